"""Co-run import: every variant of Packrat's multi-instance CSVs is read by its stated rule,
ambiguity is refused naming the line, and the busy-cores model is fitted with its provenance."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from packrat_sim.corun import (
    NUMBERING_FROM_ONE,
    NUMBERING_FROM_ZERO,
    NUMBERING_SOLO,
    CorunError,
    calibrate,
    corun_evidence,
    read_corun_csv,
)
from packrat_sim.profile import Interference, dumps_profile, import_packrat_csv, loads_profile

SERIES = "resnet_manual_script,{topology},numactl,tcmalloc"
SINGLE_HEADER = "benchmark,topology,pinning,allocator,instance_id,interop_threads,intraop_threads,batch_size,latency(min),latency(avg),latency(max),flops"
K_HEADER = "benchmark,topology,pinning,allocator,instances,instance_id,interop_threads,intraop_threads,batch_size,latency(min),latency(avg),latency(max),flops"
NO_K_HEADER = SINGLE_HEADER


def isolated_ms(t: int, b: int, topology: str = "sequential") -> float:
    """The fixture's isolated latency L[t, b] (interleave 2% slower than sequential)."""
    return (10.0 + 8.0 * b / t) * (1.02 if topology == "interleave" else 1.0)


def single_csv() -> str:
    """A single-instance profile CSV: t = 1, 2, 4 x b = 8, 16, 32, 64, both topologies."""
    lines = [SINGLE_HEADER]
    for topology in ("sequential", "interleave"):
        for t in (1, 2, 4):
            for b in (8, 16, 32, 64):
                v = isolated_ms(t, b, topology)
                lines.append(f"{SERIES.format(topology=topology)},1,1,{t},{b},{v * 0.99},{v},{v * 1.01},0.0")
    return "\n".join(lines) + "\n"


def profile(topology: str = "sequential"):
    return import_packrat_csv(single_csv(), series=[("topology", topology)])


def k_row(k: int, i: int, t: int, b: int, ms: float, topology: str = "sequential") -> str:
    """A row of a file with an ``instances`` column."""
    return f"{SERIES.format(topology=topology)},{k},{i},1,{t},{b},{ms * 0.99},{ms},{ms * 1.01},0.0"


def row(i: int, t: int, b: int, ms: float, topology: str = "sequential") -> str:
    """A row of a file without an ``instances`` column."""
    return f"{SERIES.format(topology=topology)},{i},1,{t},{b},{ms * 0.99},{ms},{ms * 1.01},0.0"


def read(lines, header=K_HEADER, **kwargs):
    chosen = profile().chosen
    return read_corun_csv("\n".join([header, *lines]) + "\n", source="co.csv",
                          profile_series=kwargs.pop("profile_series", dict(chosen)), **kwargs)


# ------------------------------------------------------------------- variants


def test_an_instances_column_with_id_k_makes_id_0_a_solo_run_checked_against_the_isolated_cell():
    iso = isolated_ms(1, 16)
    f = read([k_row(3, 0, 1, 16, iso * 1.001), k_row(3, 1, 1, 16, iso * 1.10), k_row(3, 2, 1, 16, iso * 1.20),
              k_row(3, 3, 1, 16, iso * 1.15)])
    assert f.numbering == NUMBERING_SOLO and f.instances_column
    (run,) = f.runs
    assert (run.instances, [r.instance_id for r in run.rows], [s.instance_id for s in run.solo]) == (3, [1, 2, 3], [0])
    ev = corun_evidence(profile().profile, f.runs)
    (obs,) = ev.observations
    assert (obs.threads, obs.batch, obs.instances, obs.other_busy_cores) == (1, 16, 3, 2)
    assert obs.slowdown == pytest.approx(1.20) and obs.source_row == 4  # the slowest instance, not the solo row
    (check,) = ev.checks
    assert check.kind == "solo" and check.difference == pytest.approx(0.001)


def test_ids_from_0_without_an_instances_column_count_every_row_as_an_instance():
    iso = isolated_ms(2, 8)
    f = read([row(0, 2, 8, iso * 1.3), row(1, 2, 8, iso * 1.1)], header=NO_K_HEADER)
    assert f.numbering == NUMBERING_FROM_ZERO and not f.instances_column
    (run,) = f.runs
    assert run.instances == 2 and run.solo == () and run.measured_ms == pytest.approx(iso * 1.3)
    (obs,) = corun_evidence(profile().profile, f.runs).observations
    assert obs.other_busy_cores == 2 and obs.slowdown == pytest.approx(1.3)


def test_ids_from_1_without_an_instances_column_count_every_row_as_an_instance():
    iso = isolated_ms(1, 32)
    f = read([row(i, 1, 32, iso * (1 + i / 100)) for i in (1, 2, 3, 4)], header=NO_K_HEADER)
    assert f.numbering == NUMBERING_FROM_ONE
    assert [(r.instances, r.complete) for r in f.runs] == [(4, True)]


def test_missing_rows_with_an_instances_column_keep_k_and_use_the_slowest_present_instance():
    iso = isolated_ms(1, 8)
    present = [k_row(16, i, 1, 8, iso * (1 + i / 100)) for i in (1, 3, 5, 7, 9, 11, 13, 16)]
    f = read([k_row(16, 0, 1, 8, iso), *present])
    (run,) = f.runs
    assert (run.instances, len(run.rows), run.complete) == (16, 8, False)
    assert run.describe() == "16 x 1t x 8 (8 of 16 rows)"
    (obs,) = corun_evidence(profile().profile, f.runs).observations
    assert obs.other_busy_cores == 15 and obs.slowdown == pytest.approx(1.16)


def test_missing_rows_without_an_instances_column_are_refused_naming_the_run_s_first_line():
    iso = isolated_ms(1, 8)
    with pytest.raises(CorunError, match=r"line 2: the run of 1t x 8 has instance ids \[0, 1, 3\].*cannot be determined"):
        read([row(0, 1, 8, iso), row(1, 1, 8, iso), row(3, 1, 8, iso)], header=NO_K_HEADER)


def test_a_fat_row_is_a_check_against_the_isolated_cell_not_a_co_run_observation():
    iso = isolated_ms(1, 16)
    fat = isolated_ms(4, 64)
    f = read([k_row(2, 0, 1, 16, iso), k_row(2, 1, 1, 16, iso * 1.05), k_row(2, 2, 1, 16, iso * 1.04),
              k_row(1, 1, 4, 64, fat * 1.03)])
    ev = corun_evidence(profile().profile, f.runs)
    assert [o.instances for o in ev.observations] == [2]
    assert [(c.kind, c.threads, c.batch) for c in ev.checks] == [("solo", 1, 16), ("fat", 4, 64)]
    assert ev.checks[1].difference == pytest.approx(0.03)


def test_a_lone_row_without_an_instances_column_is_a_fat_run():
    f = read([row(1, 4, 64, isolated_ms(4, 64))], header=NO_K_HEADER)
    assert [(r.instances, r.threads, r.batch) for r in f.runs] == [(1, 4, 64)]
    assert corun_evidence(profile().profile, f.runs).observations == ()


def test_interleaved_topology_is_a_series_of_its_own_chosen_like_the_profile_s():
    iso = isolated_ms(1, 16)
    lines = [k_row(2, 1, 1, 16, iso * 1.1), k_row(2, 2, 1, 16, iso * 1.1),
             k_row(2, 1, 1, 16, iso * 1.3, "interleave"), k_row(2, 2, 1, 16, iso * 1.3, "interleave")]
    seq = read(lines)  # several series: the one agreeing with the profile's is taken
    assert dict(seq.series)["topology"] == "sequential" and len(seq.skipped) == 2
    assert all("topology=interleave" in s.reason for s in seq.skipped)
    inter = read(lines, series=[("topology", "interleave")], profile_series=dict(profile("interleave").chosen))
    assert inter.runs[0].measured_ms == pytest.approx(iso * 1.3)


def test_a_co_run_series_that_does_not_match_the_profile_s_is_an_error_naming_both():
    iso = isolated_ms(1, 16)
    lines = [k_row(2, 1, 1, 16, iso, "interleave"), k_row(2, 2, 1, 16, iso, "interleave")]
    with pytest.raises(CorunError, match=r"co-run series .*topology=interleave.* does not match the profile's "
                                         r"series .*topology=sequential.*differs in topology"):
        read(lines)


def test_a_row_repeated_verbatim_is_read_once_and_reported():
    iso = isolated_ms(1, 16)
    lines = [k_row(2, 1, 1, 16, iso * 1.1), k_row(2, 2, 1, 16, iso * 1.2)]
    f = read([*lines, lines[1]])
    assert len(f.runs[0].rows) == 2
    assert [(s.line, s.reason) for s in f.skipped] == [(4, "repeats an earlier row verbatim (read once)")]


def test_two_different_rows_for_one_instance_id_are_refused_naming_both_lines():
    iso = isolated_ms(1, 16)
    with pytest.raises(CorunError, match=r"line 4: instance_id 2 of the run 2 x 1t x 16 already read on line 3"):
        read([k_row(2, 1, 1, 16, iso), k_row(2, 2, 1, 16, iso * 1.1), k_row(2, 2, 1, 16, iso * 1.2)])


def test_an_id_above_the_run_s_k_is_refused_naming_its_line():
    iso = isolated_ms(1, 16)
    with pytest.raises(CorunError, match=r"line 3: instance_id 5 disagrees with instances 2"):
        read([k_row(2, 2, 1, 16, iso), k_row(2, 5, 1, 16, iso)])


def test_complete_runs_numbered_from_0_with_an_instances_column_have_no_solo_row():
    iso = isolated_ms(1, 16)
    f = read([k_row(2, 0, 1, 16, iso * 1.1), k_row(2, 1, 1, 16, iso * 1.2)])
    assert f.numbering == NUMBERING_FROM_ZERO and len(f.runs[0].rows) == 2 and f.runs[0].solo == ()


def test_an_id_0_that_could_be_a_solo_run_or_an_instance_is_refused_as_ambiguous():
    iso = isolated_ms(1, 16)
    with pytest.raises(CorunError, match=r"line 2: instance_id 0 in a run of 4 instances.*Ambiguous"):
        read([k_row(4, 0, 1, 16, iso), k_row(4, 1, 1, 16, iso), k_row(4, 2, 1, 16, iso)])


def test_a_co_run_csv_without_an_instance_id_column_is_refused():
    with pytest.raises(CorunError, match="needs an instance_id column"):
        read_corun_csv("intraop_threads,batch_size,latency(avg)\n1,16,10\n")


def test_a_bad_instances_value_names_the_line_and_column():
    with pytest.raises(CorunError, match=r"line 2: instances must be an integer >= 1, got 'two'"):
        read([k_row(2, 1, 1, 16, 30.0).replace("tcmalloc,2,", "tcmalloc,two,", 1)])


# ---------------------------------------------------------------- calibration


def known_slowdown(other: int) -> float:
    """A piecewise-linear slowdown: +2% per other busy core up to 4, then +5% per core."""
    return 1.0 + 0.02 * min(other, 4) + 0.05 * max(0, other - 4)


def synthetic_sweep() -> str:
    """k x 1t x 16 runs (k = 2..8) and k x 2t x 8 runs (k = 2..4), every instance at exactly
    L[t, b] * s((k - 1) t) except a faster one, with solo rows: a known answer."""
    lines = [K_HEADER]
    for t, b, ks in ((1, 16, range(2, 9)), (2, 8, range(2, 5))):
        for k in ks:
            slow = isolated_ms(t, b) * known_slowdown((k - 1) * t)
            lines.append(k_row(k, 0, t, b, isolated_ms(t, b)))
            lines += [k_row(k, i, t, b, slow if i == k else slow * 0.99) for i in range(1, k + 1)]
    return "\n".join(lines) + "\n"


def test_the_fit_recovers_a_known_piecewise_linear_slowdown_exactly():
    imp = profile()
    f = read_corun_csv(synthetic_sweep(), source="sweep.csv", profile_series=dict(imp.chosen))
    model = calibrate(imp.profile, [f]).profile.interference
    assert model is not None and model.fit_error == pytest.approx(0.0, abs=1e-12)
    expected = {c: known_slowdown(c) for c in (1, 2, 3, 4, 5, 6, 7)}
    assert dict(model.points) == pytest.approx(expected)


def test_observations_keep_the_instance_s_own_thread_count():
    imp = profile()
    f = read_corun_csv(synthetic_sweep(), profile_series=dict(imp.chosen))
    obs = corun_evidence(imp.profile, f.runs).observations
    assert {(o.threads, o.other_busy_cores) for o in obs if o.threads == 2} == {(2, 2), (2, 4), (2, 6)}


def test_calibration_records_its_provenance_and_the_profile_json_round_trips():
    imp = profile()
    f = read_corun_csv(synthetic_sweep(), source="sweep.csv", profile_series=dict(imp.chosen))
    calibrated = calibrate(imp.profile, [f]).profile
    meta = dict(calibrated.meta)
    assert meta["interference.source"] == "sweep.csv" and meta["interference.runs"] == "10"
    assert meta["interference.instances"] == "2,3,4,5,6,7,8" and meta["interference.rows"] == "44"
    assert meta["interference.solo_check"].startswith("10 solo row(s) vs the isolated cell: median +0.00%")
    assert "topology=sequential" in meta["interference.series"] and "slowest" in meta["interference.definition"]
    assert loads_profile(dumps_profile(calibrated)) == calibrated


def test_calibration_replaces_an_earlier_model_and_its_provenance():
    imp = profile()
    f = read_corun_csv(synthetic_sweep(), source="sweep.csv", profile_series=dict(imp.chosen))
    once = calibrate(imp.profile, [f]).profile
    from dataclasses import replace

    stale = replace(once, interference=Interference(points=((1, 9.0),)),
                    meta=once.meta + (("interference.stale", "x"),))
    again = calibrate(stale, [f]).profile
    assert again.interference == once.interference and "interference.stale" not in dict(again.meta)


def test_calibration_without_a_priceable_co_run_is_an_error_naming_the_missing_cells():
    f = read([k_row(2, 1, 3, 16, 30.0), k_row(2, 2, 3, 16, 31.0)])
    with pytest.raises(CorunError, match=r"no co-run of 1 run\(s\) can be priced.*3t x 16"):
        calibrate(profile().profile, [f])


def test_calibration_from_fat_rows_alone_is_an_error_saying_so():
    f = read([row(1, 4, 64, isolated_ms(4, 64))], header=NO_K_HEADER)
    with pytest.raises(CorunError, match=r"no co-run to fit: the 1 run\(s\) read are all of 1 instance"):
        calibrate(profile().profile, [f])


# ------------------------------------------------------------------ robustness


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["2", "3", "2", "3.0", "4", "1", "0", "x", "1e400"]),
                          st.sampled_from(["0", "1", "2", "3", "1", "2", "4", "-1"]),
                          st.sampled_from(["1", "2", "1", "0"]),
                          st.sampled_from(["8", "16", "8", "3"]),
                          st.sampled_from(["50", "61.5", "200", "90", "nan"])), min_size=1, max_size=8),
       st.booleans())
def test_no_row_values_crash_the_co_run_reader_or_the_calibration(rows, with_k):
    header = "instances,instance_id,intraop_threads,batch_size,latency(avg)" if with_k else \
        "instance_id,intraop_threads,batch_size,latency(avg)"
    text = header + "\n" + "\n".join(",".join(r if with_k else r[1:]) for r in rows)
    try:
        f = read_corun_csv(text)
    except CorunError:
        return
    assert all(run.rows and run.instances >= len(run.rows) for run in f.runs)
    try:
        model = calibrate(profile().profile, [f]).profile.interference
    except CorunError:
        return
    assert model is not None and all(s > 0 for _, s in model.points)
