"""Hostile input to `packrat bench`: a billion batch, unusable --out, a hostile profile source."""

from __future__ import annotations

import pytest

from tests.hostile_helpers import assert_bad_input, run_packrat
from ui.reports.bench import md_escape, to_markdown


@pytest.mark.parametrize("flag", [[], ["--out", "{tmp}/nonexist/report"]], ids=["no-out", "missing-parent"])
def test_a_billion_batch_is_refused_by_the_memory_limit(tmp_path, flag):
    pytest.importorskip("torch")
    # `bench --batches 1000000000` was killed by the kernel at 23-24 GB
    args = [a.replace("{tmp}", str(tmp_path)) for a in flag]
    out = run_packrat("bench", "--model", "tiny-mlp", "--batches", "1000000000", *args, timeout_s=120)
    assert_bad_input(out)
    assert "PACKRAT_MAX_MEMORY_MB" in out.stderr or "does not exist" in out.stderr


def test_an_out_directory_whose_parent_is_missing_is_refused_before_measuring(tmp_path):
    pytest.importorskip("torch")
    missing = tmp_path / "nonexist"
    out = run_packrat("bench", "--model", "tiny-mlp", "--batches", "1,2", "--iterations", "1000",
                      "--out", str(missing / "report"), timeout_s=120)
    assert_bad_input(out, str(missing))
    assert not missing.exists()


def test_an_out_path_that_is_a_symlink_is_refused(tmp_path):
    pytest.importorskip("torch")
    (tmp_path / "real").mkdir()
    (tmp_path / "ln").symlink_to(tmp_path / "real")
    out = run_packrat("bench", "--model", "tiny-mlp", "--batches", "1", "--out", str(tmp_path / "ln"), timeout_s=120)
    assert_bad_input(out, "symbolic link")


def _report(source: str) -> dict:
    row = {"batch": 2, "fat_ms": 1.0, "thin_ms": 1.0, "optimizer": "1x1x2", "optimizer_ms": 1.0,
           "oracle_best": "1x1x2", "oracle_ms": 1.0, "speedup_optimizer_vs_fat": 1.0, "regret_pct": 0.0,
           "optimizer_prediction_error_pct": 0.0, "oracle_complete": True,
           "plans": [{"describe": "1x1x2", "roles": ["fat"], "median_ms": 1.0, "p90_ms": 1.0,
                      "speedup_vs_fat": 1.0, "predicted_ms": 1.0, "prediction_error_pct": 0.0}]}
    return {"model": "tiny-mlp", "cores": 1, "topology": "1 CPU", "iterations": 1,
            "profile": {"synthetic": False, "source": source, "model": "tiny-mlp"}, "batches": [row]}


def test_the_markdown_report_escapes_a_hostile_profile_source():
    source = "evil <script>alert(1)</script> [click](javascript:x) | a *b*\n# heading"
    md = to_markdown(_report(source))
    assert "<script>" not in md and "](javascript" not in md and "\n# heading" not in md
    assert md_escape(source) in md
    para = next(ln for ln in md.splitlines() if "alert" in ln)
    assert "\\<script\\>" in para and "\\|" in para and "\\*b\\*" in para


def test_md_escape_keeps_plain_text_readable():
    assert md_escape("Packrat CSV data/bert.csv") == "Packrat CSV data/bert.csv"
    assert md_escape("a_b") == "a\\_b"
