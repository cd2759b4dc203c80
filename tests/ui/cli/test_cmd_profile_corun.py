"""`packrat profile --import-packrat SINGLE --corun MULTI`: fits the co-run model, says what it
read, and refuses bad co-run files with one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

from packrat_sim.profile import read_profile

FIXTURES = Path(__file__).parents[2] / "packrat_sim" / "fixtures"

SINGLE = str(FIXTURES / "packrat_corun_single_4core.csv")
CORUN = str(FIXTURES / "packrat_corun_k_x_1t_4core.csv")


def test_corun_import_fits_the_model_and_prints_what_it_read(cli, tmp_path):
    out_file = tmp_path / "p.json"
    code, out, err = cli("profile", "--import-packrat", SINGLE, "--corun", CORUN,
                         "--series", "topology=sequential", "--out", str(out_file))
    assert code == 0, err
    assert "5 run(s) of k = 1,2,3,4, 12 instance row(s), 3 solo row(s); instance ids 1..k, instance_id 0 a solo run" in out
    assert "partial run 4 x 1t x 8 (2 of 4 rows)" in out
    assert "skipped 1 row(s): repeats an earlier row verbatim (read once); line(s) 5" in out
    assert "skipped 12 row(s): series" in out and "topology=interleave" in out and "16, 17, 18, 19" in out
    assert "solo check: 3 solo row(s) vs the isolated cell: median +0.10%" in out
    assert "fat check: 1 fat row(s) vs the isolated cell: median +2.00%" in out
    assert "1: x1.050, 2: x1.100, 3: x1.155" in out
    profile = read_profile(str(out_file))
    assert profile.interference is not None and profile.interference.fit_error > 0
    meta = dict(profile.meta)
    assert meta["interference.source"] == CORUN and meta["interference.runs"] == "4"
    assert meta["interference.partial_runs"] == "1" and meta["interference.skipped_rows"] == "13"


def test_corun_import_json_is_one_object_with_the_account(cli, tmp_path):
    code, out, err = cli("profile", "--import-packrat", SINGLE, "--corun", CORUN,
                         "--series", "topology=interleave", "--out", str(tmp_path / "p.json"), "--json")
    assert code == 0 and err == ""
    summary = json.loads(out)
    corun = summary["corun"]
    assert corun["files"][0]["series"]["topology"] == "interleave" and corun["files"][0]["runs"] == 3
    assert [o["other_busy_cores"] for o in corun["observations"]] == [1, 2, 3]
    assert corun["interference"]["points"][0][1] > 1.09  # interleave slows down twice as fast here


def test_corun_needs_import_packrat(cli, tmp_path):
    code, out, err = cli("profile", "--from", "builtin:cnn-16", "--corun", CORUN, "--out", str(tmp_path / "p.json"))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "--corun only applies" in err


def test_a_conflicting_duplicate_instance_row_exits_2_naming_the_file_and_lines(cli, tmp_path):
    lines = open(CORUN).read().splitlines()
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines[:4] + [lines[3].replace(",44.1,", ",44.2,")] + lines[4:]) + "\n")
    out_file = tmp_path / "p.json"
    code, out, err = cli("profile", "--import-packrat", SINGLE, "--corun", str(bad),
                         "--series", "topology=sequential", "--out", str(out_file))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert f"{bad}: line 5: instance_id 2 of the run 2 x 1t x 4 already read on line 4" in err
    assert not out_file.exists()


def test_a_corun_file_of_another_series_exits_2_naming_both_series(cli, tmp_path):
    lines = open(CORUN).read().splitlines()
    only_interleave = tmp_path / "inter.csv"
    only_interleave.write_text("\n".join([lines[0]] + [x for x in lines if ",interleave," in x]) + "\n")
    code, _, err = cli("profile", "--import-packrat", SINGLE, "--corun", str(only_interleave),
                       "--series", "topology=sequential", "--out", str(tmp_path / "p.json"))
    assert code == 2 and "topology=interleave" in err and "does not match the profile's series" in err
    assert "topology=sequential" in err


def test_the_help_states_the_variant_rules(cli):
    code, out, _ = cli("profile", "--help")
    flat = " ".join(out.split())
    assert code == 0 and "--corun" in flat
    for rule in ("id 0 a solo run", "0..k-1 when every run is complete", "refused as ambiguous",
                 "Missing rows", "a gap is refused", "fat", "read once"):
        assert rule in flat, rule
