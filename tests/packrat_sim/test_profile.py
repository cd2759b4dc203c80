"""Profiles: cells and statistics, JSON round trip, CSV export, Packrat CSV import, predictor."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from packrat_sim.profile import (
    SCHEMA,
    Cell,
    Interference,
    Profile,
    ProfileError,
    builtin_profile,
    dumps_profile,
    import_packrat_csv,
    loads_profile,
    parse_series_selectors,
    read_profile,
    write_profile,
)

FIXTURES = Path(__file__).parent / "fixtures"
RESNET_CSV = (FIXTURES / "packrat_resnet_8core.csv").read_text()
BERT_CSV = (FIXTURES / "packrat_bert_4core_with_source.csv").read_text()


def small_profile() -> Profile:
    return Profile(
        model="m",
        cells=(
            Cell.from_samples(1, 1, [10.0, 12.0, 11.0]),
            Cell.from_samples(2, 1, [6.0, 6.5]),
            Cell.from_samples(1, 4, [40.0]),
            Cell.from_samples(2, 4, [22.0, 24.0]),
        ),
    )


def test_cell_statistics_are_computed_from_its_samples():
    c = Cell.from_samples(1, 1, [1.0, 2.0, 3.0, 4.0, 10.0])
    assert (c.min_ms, c.median_ms, c.mean_ms, c.max_ms) == (1.0, 3.0, 4.0, 10.0)
    assert c.p90_ms == pytest.approx(7.6)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_a_cell_rejects_zero_negative_and_non_finite_latencies(bad):
    with pytest.raises(ProfileError, match="latency"):
        Cell.from_samples(1, 1, [bad])


def test_a_profile_keeps_cells_sorted_and_rejects_duplicates():
    p = small_profile()
    assert [(c.threads, c.batch) for c in p.cells] == [(1, 1), (1, 4), (2, 1), (2, 4)]
    assert p.threads == (1, 2) and p.batches == (1, 4)
    with pytest.raises(ProfileError, match="duplicate cell threads=1 batch=1"):
        Profile(model="m", cells=(Cell.from_samples(1, 1, [1.0]), Cell.from_samples(1, 1, [2.0])))


def test_json_round_trip_preserves_everything():
    p = Profile(
        model="m",
        cells=small_profile().cells,
        synthetic=True,
        source="unit test",
        interference=Interference(points=((1, 1.1), (3, 1.5)), fit_error=0.02),
        meta=(("k", "v"),),
    )
    again = loads_profile(dumps_profile(p))
    assert again == p
    assert json.loads(dumps_profile(p))["schema"] == SCHEMA


def test_an_unknown_schema_is_rejected_by_name():
    obj = small_profile().to_json()
    obj["schema"] = "packrat.profile/9"
    with pytest.raises(ProfileError, match="packrat.profile/9"):
        loads_profile(json.dumps(obj))


def test_duplicate_schema_keys_are_rejected():
    text = '{"schema": "packrat.profile/1", "schema": "packrat.profile/2", "model": "m", "cells": []}'
    with pytest.raises(ProfileError, match="duplicate key 'schema'"):
        loads_profile(text)


def test_nan_in_a_profile_file_is_rejected():
    text = dumps_profile(small_profile()).replace("40.0", "NaN", 1)
    with pytest.raises(ProfileError):
        loads_profile(text)


def test_read_profile_names_a_missing_file(tmp_path):
    with pytest.raises(ProfileError, match="does not exist"):
        read_profile(str(tmp_path / "nope.json"))


def test_write_then_read_gives_the_same_profile(tmp_path):
    path = tmp_path / "p.json"
    write_profile(small_profile(), str(path))
    assert read_profile(str(path)) == small_profile()


def test_csv_export_has_one_row_per_cell_with_all_statistics():
    lines = small_profile().to_csv().splitlines()
    assert lines[0] == "threads,batch,n,min_ms,median_ms,mean_ms,p90_ms,max_ms"
    assert len(lines) == 1 + 4
    assert lines[1].startswith("1,1,3,10.0,11.0,11.0,")


def test_interference_interpolates_between_points_and_holds_beyond():
    i = Interference(points=((2, 1.2), (4, 1.6)))
    assert i.slowdown(0) == 1.0
    assert i.slowdown(1) == pytest.approx(1.1)
    assert i.slowdown(3) == pytest.approx(1.4)
    assert i.slowdown(100) == pytest.approx(1.6)


# ------------------------------------------------------------- Packrat CSV import


def test_a_packrat_csv_with_several_series_requires_a_choice_and_lists_them():
    with pytest.raises(ProfileError) as err:
        import_packrat_csv(RESNET_CSV)
    msg = str(err.value)
    assert "4 series remain" in msg
    assert "benchmark=resnet_manual_script" in msg and "topology=interleave" in msg


def test_series_globs_select_exactly_one_series_and_use_the_average_latency():
    sel = parse_series_selectors(["benchmark=*_script", "topology=seq*"])
    result = import_packrat_csv(RESNET_CSV, series=sel)
    p = result.profile
    assert p.model == "resnet_manual_script"
    assert p.threads == tuple(range(1, 9)) and p.batches == (1, 2, 4, 8, 16)
    assert dict(p.meta)["series.topology"] == "sequential"
    row = next(
        line.split(",")
        for line in RESNET_CSV.splitlines()
        if line.startswith("resnet_manual_script,sequential,numactl,1,1,3,4,")
    )
    assert p.latency(3, 4) == pytest.approx(float(row[8]))
    assert p.cell(3, 4).min_ms == pytest.approx(float(row[7]))
    assert len(result.series) == 4


def test_series_are_never_averaged_together():
    eager = import_packrat_csv(RESNET_CSV, series=[("benchmark", "*eager"), ("topology", "sequential")]).profile
    script = import_packrat_csv(RESNET_CSV, series=[("benchmark", "*script"), ("topology", "sequential")]).profile
    assert eager.latency(1, 1) != script.latency(1, 1)


def test_a_file_with_a_source_column_and_one_series_imports_without_selection():
    p = import_packrat_csv(BERT_CSV).profile
    assert p.model == "bert_manual_script"
    assert dict(p.meta)["series.source"] == "torch"
    assert p.latency(2, 4) is not None


def test_columns_are_found_by_header_name_in_any_order():
    lines = BERT_CSV.splitlines()
    header = lines[0].split(",")
    order = list(reversed(range(len(header))))
    shuffled = [",".join(line.split(",")[i] for i in order) for line in lines]
    assert import_packrat_csv("\n".join(shuffled)).profile == import_packrat_csv(BERT_CSV).profile


def test_a_csv_lacking_a_needed_column_names_it():
    text = BERT_CSV.replace("latency(avg)", "latency_mean")
    with pytest.raises(ProfileError, match=r"lacks column\(s\) latency\(avg\)"):
        import_packrat_csv(text)


@pytest.mark.parametrize("bad", ["nan", "-3.0", "0", "abc", ""])
def test_a_bad_latency_names_the_line_and_column(bad):
    lines = BERT_CSV.splitlines()
    fields = lines[3].split(",")
    fields[10] = bad
    lines[3] = ",".join(fields)
    with pytest.raises(ProfileError, match=r"line 4: latency\(avg\)"):
        import_packrat_csv("\n".join(lines))


def test_an_unknown_series_column_is_rejected():
    with pytest.raises(ProfileError, match="'color' is not in the CSV"):
        import_packrat_csv(BERT_CSV, series=[("color", "*")])


def test_a_selector_without_equals_is_rejected():
    with pytest.raises(ProfileError, match="COLUMN=GLOB"):
        parse_series_selectors(["benchmark"])


def test_repeated_rows_of_a_cell_are_merged_and_counted():
    lines = BERT_CSV.splitlines()
    result = import_packrat_csv("\n".join(lines + [lines[1]]))
    assert result.merged_duplicates == 1


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_no_text_crashes_the_packrat_csv_parser(text):
    try:
        import_packrat_csv(text)
    except ProfileError:
        pass


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["1", "2", "0", "-1", "x", "1.5", "1e400", "nan", ""]),
            st.sampled_from(["1", "4", "0", "abc", ""]),
            st.sampled_from(["1.0", "0", "-2", "nan", "inf", "5", "", "1e-300"]),
        ),
        max_size=8,
    )
)
def test_no_row_values_crash_the_packrat_csv_parser(rows):
    text = "intraop_threads,batch_size,latency(avg)\n" + "\n".join(",".join(r) for r in rows)
    try:
        p = import_packrat_csv(text).profile
    except ProfileError:
        return
    assert all(c.mean_ms > 0 and math.isfinite(c.mean_ms) for c in p.cells)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300) | st.builds(lambda s: '{"schema": "packrat.profile/1", ' + s, st.text(max_size=200)))
def test_no_text_crashes_the_profile_json_reader(text):
    try:
        loads_profile(text)
    except ProfileError:
        pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {"schema": st.just(SCHEMA)},
        optional={
            "model": json_values,
            "cells": st.lists(
                st.fixed_dictionaries({}, optional={k: json_values for k in ("threads", "batch", "mean_ms", "min_ms", "max_ms", "samples_ms")}),
                max_size=3,
            ),
            "machine": json_values,
            "interference": json_values,
            "meta": json_values,
            "statistic": json_values,
            "synthetic": json_values,
        },
    )
)
def test_no_json_structure_crashes_the_profile_reader(obj):
    try:
        loads_profile(json.dumps(obj))
    except ProfileError:
        pass


# ------------------------------------------------------------------ predictor


def test_the_predictor_returns_measured_cells_unchanged():
    p = small_profile()
    assert p.predict(2, 4) == p.latency(2, 4)


def test_the_predictor_interpolates_in_batch_between_profiled_batches():
    p = small_profile()
    assert p.predict(1, 2) == pytest.approx(11.0 + (40.0 - 11.0) / 3)


def test_the_predictor_interpolates_in_inverse_threads_and_is_never_zero():
    p = Profile(model="m", cells=(Cell.from_samples(1, 1, [12.0]), Cell.from_samples(4, 1, [3.0])))
    y = p.predict(2, 1)
    assert 3.0 < y < 12.0
    assert y == pytest.approx(3.0 + (12.0 - 3.0) * (0.5 - 0.25) / (1 - 0.25))
    assert p.predict(8, 1000) > 0 and p.predict(1, 1) > 0


# ------------------------------------------------------------------- builtins


def test_builtin_profiles_are_labelled_synthetic_and_deterministic():
    a = builtin_profile("cnn-16")
    assert a.synthetic and "SYNTHETIC" in a.source and a.label() == "cnn-16 [synthetic]"
    assert a == builtin_profile("cnn-16")
    assert a.threads == tuple(range(1, 17)) and a.batches[-1] == 4096
    assert all(len(c.samples_ms) == 7 for c in a.cells)


def test_an_unknown_builtin_lists_the_known_ones():
    with pytest.raises(ProfileError, match="cnn-16, cnn-64, transformer-16, transformer-64"):
        builtin_profile("lstm-8")
