"""packrat_sim.limits: memory estimates and the limit they are checked against."""

from __future__ import annotations

import pytest

from packrat_sim import limits
from packrat_sim.limits import ENV_VAR, ResourceLimitError, max_memory_bytes, require


def test_the_env_var_sets_the_limit_in_megabytes(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "256")
    assert max_memory_bytes() == 256 * 2**20


def test_the_default_limit_is_a_fraction_of_physical_memory(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    phys = limits.physical_memory_bytes()
    assert phys is not None
    assert max_memory_bytes() <= phys * limits.DEFAULT_FRACTION


@pytest.mark.parametrize("bad", ["0", "-5", "nan", "inf", "lots"])
def test_a_bad_env_var_is_refused_naming_it(monkeypatch, bad):
    monkeypatch.setenv(ENV_VAR, bad)
    with pytest.raises(ResourceLimitError, match=ENV_VAR):
        max_memory_bytes()


def test_require_refuses_above_the_limit_with_the_estimate_the_limit_and_how_to_raise_it(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "100")
    require(50 * 2**20, "a small table")
    with pytest.raises(ResourceLimitError) as err:
        require(3 * 2**30, "the DP table for batch=10000000")
    msg = str(err.value)
    assert "the DP table for batch=10000000" in msg and "3.0 GiB" in msg and "100.0 MiB" in msg
    assert f"{ENV_VAR}=MEGABYTES" in msg and "\n" not in msg


def test_require_raises_the_callers_error_type(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "1")

    class MyError(ValueError):
        pass

    with pytest.raises(MyError, match="more than allowed"):
        require(float("inf"), "x", error=MyError)


def test_estimates_grow_with_the_request():
    assert limits.dp_table_bytes(16, 10_000_000) > 3 * 2**30  # plan --batch 10000000 took 2.7 GB
    assert limits.dp_table_bytes(16, 64) < 2**20
    assert limits.batch_bytes(1_000_000_000, (3, 64, 64)) > 2**40
    assert limits.requests_bytes(2_000_000_000) > 2**40


def test_format_bytes_reads_naturally():
    assert limits.format_bytes(512) == "512 B"
    assert limits.format_bytes(1536) == "1.5 KiB"
    assert limits.format_bytes(3 * 2**30) == "3.0 GiB"


def test_format_bytes_compact_is_the_checkers_style():
    assert limits.format_bytes(1, compact=True) == "1 B"
    assert limits.format_bytes(2**20, compact=True) == "1 MiB"
    assert limits.format_bytes(1536, compact=True) == "2 KiB"
    assert limits.format_bytes(3 * 2**30, compact=True) == "3 GiB"
    assert limits.format_bytes(1.5 * 2**30, compact=True) == "1.5 GiB"


def test_physical_memory_is_capped_by_the_cgroup_limit(monkeypatch, tmp_path):
    v2, v1 = tmp_path / "memory.max", tmp_path / "memory.limit_in_bytes"
    v2.write_text("max\n")  # cgroup v2: no limit
    v1.write_text("65536\n")
    monkeypatch.setattr(limits, "CGROUP_MEMORY_FILES", (str(v2), str(v1)))
    limits.physical_memory_bytes.cache_clear()
    try:
        assert limits.physical_memory_bytes() == 65536
        v1.write_text(f"{2**62}\n")  # "no limit" as cgroup v1 spells it
        limits.physical_memory_bytes.cache_clear()
        assert limits.physical_memory_bytes() > 65536
    finally:
        limits.physical_memory_bytes.cache_clear()


def test_current_rss_is_a_positive_number_of_bytes():
    assert limits.current_rss() > 2**20
