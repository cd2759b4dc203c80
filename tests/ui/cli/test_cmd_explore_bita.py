"""`packrat explore --strategy bita`: the criterion option, the coverage line and its JSON, exit 3
(never OK) on a correct protocol, exit 2 on a bad criterion."""

from __future__ import annotations

import json

from ui.cli.app import main


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["explore", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_bita_on_a_correct_protocol_reports_its_coverage_and_exits_3(capsys):
    code, out, _ = run(capsys, "--protocol", "reconfig", "--strategy", "bita", "--bita-criterion", "pcr",
                       "--max-schedules", "50", "--seed", "2")
    assert code == 3
    assert "coverage   pcr: " in out and " ordering goals covered (" in out
    assert "verdict    UNKNOWN: bita is not exhaustive: no violation in 50 schedules" in out


def test_bita_json_has_the_goals_covered_and_the_coverage_reached(capsys, tmp_path):
    code, out, _ = run(capsys, "--protocol", "register", "--variant", "erroneous", "--strategy", "bita",
                       "--bita-criterion", "pbr", "--max-schedules", "300", "--json",
                       "--out-replay", tmp_path / "bug.json")
    obj = json.loads(out)
    assert code == 1 and obj["verdict"] == "VIOLATION" and obj["strategy"] == "bita" and obj["seed"] == 0
    cov = obj["coverage"]
    assert cov["criterion"] == "pbr" and 0 < cov["covered"] <= cov["goals"]
    assert cov["coverage"] == round(cov["covered"] / cov["goals"], 6) and len(cov["covered_goals"]) == cov["covered"]


def test_a_bad_criterion_exits_2_naming_it(capsys):
    code, _, err = run(capsys, "--protocol", "reconfig", "--strategy", "bita", "--bita-criterion", "xyz")
    assert code == 2 and "bita criterion must be one of pr, pcr, pbr, not 'xyz'" in err
