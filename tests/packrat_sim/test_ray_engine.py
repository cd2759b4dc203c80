"""The Ray engine on one local Ray instance (2 CPUs, no dashboard) shared by this session.

Same interface and outcomes as the local engine: values, task errors as failed outcomes,
a dead worker's task retried once then failed, the same sweep rows as the serial engine.
Unreachable addresses fail fast with one line. Skipped when ray is not installed.
"""

from __future__ import annotations

import math
import os
import socket
import time

import pytest

pytestmark = pytest.mark.slow

ray = pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[cluster]')")

from packrat_sim import sweep as sw  # noqa: E402
from packrat_sim.engines import SerialEngine  # noqa: E402
from packrat_sim.engines.ray import RayEngine, RayEngineError, parse_address, probe, resolve_auto  # noqa: E402


@pytest.fixture(scope="session")
def ray_instance():
    """One local Ray instance for the whole test session, always shut down."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture
def engine(ray_instance):
    with RayEngine() as e:
        yield e


def by_index(outcomes):
    return sorted(outcomes, key=lambda o: o.index)


def test_the_ray_engine_maps_a_function_over_tasks(engine):
    assert engine.name == "ray" and engine.workers == 2
    outcomes = by_index(engine.map(abs, [-3, 4, -5]))
    assert [(o.index, o.ok, o.value, o.attempts) for o in outcomes] == [(0, True, 3, 1), (1, True, 4, 1), (2, True, 5, 1)]


def test_a_task_error_is_a_failed_outcome_as_on_the_local_engine(engine):
    outcomes = by_index(engine.map(math.sqrt, [4.0, -1.0, 9.0]))
    assert [o.value for o in outcomes if o.ok] == [2.0, 3.0]
    assert outcomes[1].error == "ValueError: math domain error" and outcomes[1].attempts == 1


def test_a_task_whose_worker_dies_is_retried_once_then_failed_and_the_rest_finish(engine):
    outcomes = by_index(engine.map(os._exit, [7]))  # os._exit(7) kills the Ray worker
    assert not outcomes[0].ok and outcomes[0].attempts == 2 and "worker died" in outcomes[0].error
    assert [o.value for o in engine.map(abs, [-1])] == [1]  # the instance still serves


def test_the_same_seeds_give_the_same_rows_on_ray_as_on_the_serial_engine(engine, tmp_path):
    grid = sw.load_grid(None, ["profile=builtin:cnn-4", "cores=4", "workload=poisson:rate=100..300/100,duration=1s,max_batch=8",
                               "policy=packrat,fat", "seed=0,1"])
    on_ray = sw.run_sweep(grid, str(tmp_path / "ray"), engine)
    serial = sw.run_sweep(grid, str(tmp_path / "serial"), SerialEngine())
    assert on_ray.rows == serial.rows and on_ray.failed == 0 and on_ray.engine == "ray"


def test_packrat_sweep_runs_on_the_ray_engine(ray_instance, cli, tmp_path):
    code, out, err = cli("sweep", "--axis", "profile=builtin:cnn-4", "--axis", "cores=4", "--axis",
                         "workload=closed:batch=8,requests=64", "--axis", "policy=fat,thin",
                         "--engine", "ray", "--out", str(tmp_path / "s"), "--json")
    assert code == 0, err
    import json

    assert json.loads(out)["engine"] == "ray" and json.loads(out)["ran"] == 2


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_an_unreachable_address_exits_2_with_one_line_well_within_30_seconds(cli, tmp_path):
    start = time.monotonic()
    code, out, err = cli("sweep", "--axis", "profile=builtin:cnn-4", "--axis", "cores=4", "--axis",
                         "workload=closed:batch=8,requests=64", "--engine", "ray",
                         "--ray-address", f"127.0.0.1:{_closed_port()}", "--out", str(tmp_path / "s"))
    assert code == 2 and "cannot reach the Ray cluster" in err and len(err.strip().splitlines()) == 1
    assert time.monotonic() - start < 30


def test_addresses_are_parsed_and_probed():
    assert parse_address("10.0.0.1:6379") == ("10.0.0.1", 6379)
    assert parse_address("ray://head:10001") == ("head", 10001)
    with pytest.raises(RayEngineError, match="HOST:PORT"):
        parse_address("head")
    with pytest.raises(RayEngineError, match="cannot reach"):
        probe(f"127.0.0.1:{_closed_port()}")


def test_auto_without_a_cluster_on_this_machine_says_so(monkeypatch, tmp_path):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    with pytest.raises(RayEngineError, match="no running Ray cluster"):
        resolve_auto()
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "ray_current_cluster").write_text("10.1.2.3:6379\n")
    assert resolve_auto() == "10.1.2.3:6379"


def test_chunked_tasks_give_one_outcome_each_and_a_dead_chunk_fails_only_its_tasks(ray_instance):
    from packrat_sim.engines.ray import auto_chunk

    assert auto_chunk(10, 2) == 1 and auto_chunk(10_000, 2) == 64
    with RayEngine(chunk_size=3) as engine:
        outcomes = by_index(engine.map(abs, list(range(-10, 0))))
        assert [o.value for o in outcomes] == list(range(10, 0, -1))
        tasks = [0, 1, 2, 3, 4, 5]  # fn below kills the worker on task 4: chunk [3, 4, 5] dies
        outcomes = by_index(engine.map(os._exit, [t if t == 4 else None for t in tasks], retries=0))
    assert [o.ok for o in outcomes[:3]] == [False, False, False]  # os._exit(None) raises TypeError
    assert all("TypeError" in o.error for o in outcomes[:3])
    assert all("worker died" in o.error for o in outcomes[3:])


def test_each_node_is_probed_once_with_its_machine_name(engine):
    from packrat_sim.engines.ray import run_on_each_node
    from real_runner.fleet import _probe_node, machine_name

    results = run_on_each_node(engine, _probe_node, None)
    assert len(results) == len(engine.nodes()) == 1
    (node_id, outcome), = results
    assert outcome.ok and outcome.value["machine"].endswith(f"-{outcome.value['logical']}c-1s")
    assert machine_name("Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz", 64, 2) == "intel-r-xeon-r-gold-6338-cpu-2-00ghz-64c-2s"


def test_the_fleet_gets_one_profile_per_machine_type_written_under_its_name(engine, tmp_path):
    pytest.importorskip("torch")
    from packrat_sim.profile import read_profile
    from real_runner.fleet import FleetRequest, profile_fleet

    results = profile_fleet(engine, FleetRequest("tiny-mlp", threads=(1,), batches=(1, 2), repeats=2, warmup=1),
                            str(tmp_path))
    (one,) = results
    assert one.error == "" and one.path == str(tmp_path / f"{one.machine}.json")
    profile = read_profile(one.path)
    assert profile.model == "tiny-mlp" and {(c.threads, c.batch) for c in profile.cells} == {(1, 1), (1, 2)}


def test_a_fleet_profile_under_a_missing_directory_is_refused_before_any_engine_starts(cli, tmp_path):
    started = time.monotonic()
    code, out, err = cli("profile", "--model", "tiny-mlp", "--engine", "ray", "--ray-address", "127.0.0.1:1",
                         "--out", str(tmp_path / "missing" / "fleet"))
    assert code == 2 and out == "" and "does not exist" in err and len(err.strip().splitlines()) == 1
    assert time.monotonic() - started < 20  # no engine, no cluster probe
