"""Profiles page (AppTest): built-in, file, Packrat CSV and measured profiles, and their charts."""

from __future__ import annotations

import math

import pytest

from packrat_sim.profile import Cell, Interference, Profile, builtin_profile, dumps_profile


def small_profile(model: str = "toy") -> Profile:
    cells = [Cell.from_samples(t, b, [10.0 * b / t + t, 10.5 * b / t + t]) for t in (1, 2, 4) for b in (1, 2, 4)]
    return Profile(model=model, cells=tuple(cells), source="unit test",
                   interference=Interference(points=((1, 1.1), (3, 1.4))))


def test_default_profile_is_a_labelled_synthetic_builtin_with_its_heatmap(app, h):
    h.no_errors(app)
    prof = builtin_profile("transformer-16")
    m = h.metrics(app)
    assert m["Cells"] == str(len(prof.cells)) and m["Threads"] == "1..16" and m["Sub-batches"] == "1..4096"
    assert any("SYNTHETIC" in w.value for w in app.warning)
    heat = h.chart(app, "profiles.heatmap")["data"][0]
    assert heat["type"] == "heatmap"
    assert heat["y"] == [str(t) for t in prof.threads] and heat["x"] == [str(b) for b in prof.batches]
    # the drawn value of (t=4, b=16) is the profile's mean latency there
    i, j = prof.threads.index(4), prof.batches.index(16)
    assert heat["customdata"][i][j] == pytest.approx(prof.latency(4, 16))
    assert heat["z"][i][j] == pytest.approx(math.log10(prof.latency(4, 16)))


def test_scaling_curves_draw_measured_and_ideal_lines(app, h):
    app.multiselect(key="profiles.curve_batches").set_value([8, 64]).run()
    h.no_errors(app)
    prof = builtin_profile("transformer-16")
    data = h.chart(app, "profiles.scaling")["data"]
    assert [d["name"] for d in data] == ["b=8", "b=8 ideal", "b=64", "b=64 ideal"]
    measured, ideal = data[2], data[3]
    assert measured["x"] == list(range(1, 17))
    assert measured["y"][15] == pytest.approx(prof.latency(16, 64))
    assert ideal["y"][15] == pytest.approx(prof.latency(1, 64) / 16)
    assert ideal["line"]["dash"] == "dash"


def test_pick_another_builtin(app, h):
    app.selectbox(key="profiles.builtin").set_value("cnn-64").run()
    app.button(key="profiles.btn.builtin").click().run()
    h.no_errors(app)
    assert h.metrics(app)["Threads"] == "1..64"
    assert "cnn-64 [synthetic]" in h.texts(app)
    heat = h.chart(app, "profiles.heatmap")["data"][0]
    assert len(heat["y"]) == 64


def test_upload_a_profile_json_then_a_broken_one(app, h):
    prof = small_profile()
    app.radio(key="profiles.source").set_value("Profile file (JSON)").run()
    app.file_uploader(key="profiles.up.json").upload("toy.json", dumps_profile(prof).encode(), "application/json").run()
    h.no_errors(app)
    assert "Current profile: toy" in h.texts(app)
    assert not any("SYNTHETIC" in w.value for w in app.warning)
    heat = h.chart(app, "profiles.heatmap")["data"][0]
    assert heat["customdata"][1][2] == pytest.approx(prof.latency(2, 4))
    inter = h.chart(app, "profiles.interference")["data"]
    assert inter[1]["x"] == [1, 3] and inter[1]["y"] == [1.1, 1.4]

    app.file_uploader(key="profiles.up.json").set_value(("bad.json", b'{"schema": "nope"}', "application/json")).run()
    assert not app.exception
    assert any("Cannot load bad.json" in e.value and "unknown profile schema" in e.value for e in app.error)
    # the page keeps working on the last good profile
    assert "Current profile: toy" in h.texts(app)
    assert h.chart(app, "profiles.heatmap")["data"][0]["customdata"][0][0] == pytest.approx(prof.latency(1, 1))


def test_import_a_packrat_csv_choosing_one_of_its_series(app, h):
    from packrat_sim.profile import import_packrat_csv

    text = (h.FIXTURES / "packrat_resnet_8core.csv").read_text()
    app.radio(key="profiles.source").set_value("Packrat CSV").run()
    app.file_uploader(key="profiles.up.csv").upload("resnet.csv", text.encode(), "text/csv").run()
    h.no_errors(app)
    box = app.selectbox(key="profiles.series")
    assert len(box.options) == 4
    choice = next(o for o in box.options if "resnet_manual_script" in o and "topology=sequential" in o)
    box.set_value(choice).run()
    app.button(key="profiles.btn.csv").click().run()
    h.no_errors(app)
    expected = import_packrat_csv(text, series=[("benchmark", "resnet_manual_script"), ("topology", "sequential")]).profile
    assert h.metrics(app)["Cells"] == str(len(expected.cells))
    heat = h.chart(app, "profiles.heatmap")["data"][0]
    assert heat["customdata"][0][0] == pytest.approx(expected.latency(1, 1))
    assert "resnet_manual_script" in h.texts(app)


def test_a_csv_without_the_needed_columns_shows_an_error(app, h):
    app.radio(key="profiles.source").set_value("Packrat CSV").run()
    app.file_uploader(key="profiles.up.csv").upload("x.csv", b"a,b\n1,2\n", "text/csv").run()
    app.button(key="profiles.btn.csv").click().run()
    assert not app.exception
    assert any("lacks column" in e.value for e in app.error)
    assert h.metrics(app)["Threads"] == "1..16"  # still the built-in profile


@pytest.mark.slow
def test_measure_a_tiny_model_on_this_machine(app, h):
    pytest.importorskip("torch")
    app.radio(key="profiles.source").set_value("Measure on this machine").run()
    app.selectbox(key="profiles.m_model").set_value("tiny-mlp")
    app.text_input(key="profiles.m_threads").set_value("1")
    app.text_input(key="profiles.m_batches").set_value("1,2")
    app.number_input(key="profiles.m_repeats").set_value(2)
    app.button(key="profiles.btn.measure").click().run()
    h.no_errors(app)
    assert any("Measured 2 cells of tiny-mlp" in s.value for s in app.success)
    assert h.metrics(app)["Cells"] == "2"
    assert "measured on this machine" in h.texts(app)
    heat = h.chart(app, "profiles.heatmap")["data"][0]
    assert heat["x"] == ["1", "2"] and all(v > 0 for v in heat["customdata"][0])
