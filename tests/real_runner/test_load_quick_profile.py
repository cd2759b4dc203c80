"""``run --load`` without a profile says what it measures first, why, and how to skip it."""

from __future__ import annotations

from packrat_sim.profile import builtin_profile
from real_runner import profiling
from real_runner.load import LoadRequest, measure_quick_profile, prepare_load


def test_a_load_without_a_profile_says_why_it_profiles_and_how_to_skip_it_next_time(monkeypatch):
    asked = []
    monkeypatch.setattr(profiling, "quick_profile", lambda model, top, cores, **kw: asked.append((model, top, cores))
                        or builtin_profile("cnn-16"))
    setup = prepare_load(LoadRequest(model="tiny-cnn", load="closed:2@1s,8@1s", cores=1))
    notes: list[str] = []
    measure_quick_profile(setup, on_note=notes.append)
    assert asked == [("tiny-cnn", setup.estimator.upper, 1)]
    (line,) = notes
    assert "to plan every batch size of the load" in line and "can take minutes" in line
    assert "`packrat profile --model tiny-cnn --threads 1-1 --batches 1,2,4,8" in line
    assert line.endswith("and pass --profile tiny-cnn.json")
