"""The executor runs a plan in pinned worker processes, gathers outputs in input order
through shared memory, and never leaves a worker behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from rr_helpers import ALLOWED, cpus_allowed, is_gone, needs_two_cpus

from packrat_sim.plan import Instance, Plan
from real_runner.executor import ExecutorError, InstancePool, WorkerError, outputs_close
from real_runner.models import build_model, make_inputs
from real_runner.topology import TopologyError

ROOT = Path(__file__).resolve().parents[2]
SPLIT = Plan((Instance(1, 3), Instance(1, 5)), 8, 2)  # uneven on purpose


@pytest.fixture(scope="module")
def pool():
    if len(ALLOWED) < 2:
        pytest.skip("needs at least 2 allowed CPUs")
    with InstancePool("tiny-cnn", SPLIT, warmup=1) as p:
        yield p


def test_a_plan_needing_more_cores_than_exist_is_refused_before_any_worker_starts():
    too_big = Plan(tuple(Instance(1, 1) for _ in range(len(ALLOWED) + 1)), len(ALLOWED) + 1, len(ALLOWED) + 1)
    with pytest.raises(TopologyError, match="use fewer threads or --allow-oversubscribe"):
        InstancePool("tiny-mlp", too_big)


@needs_two_cpus
def test_each_instance_is_a_worker_pinned_to_its_own_cores(pool):
    assert len(set(pool.pids)) == 2 and all(not is_gone(pid) for pid in pool.pids)
    assert [cpus_allowed(pid) for pid in pool.pids] == [set(c) for c in pool.cores]
    assert set(pool.cores[0]).isdisjoint(pool.cores[1])


@needs_two_cpus
def test_a_split_batch_comes_back_in_input_order_equal_to_the_model_run_in_process(pool):
    import torch

    x = make_inputs("tiny-cnn", 8, seed=5)
    out, ms = pool.run(x)
    with torch.inference_mode():
        reference = build_model("tiny-cnn")(x)  # the whole batch, in this process
    ok, diff = outputs_close(out, reference)
    assert ok, diff
    assert ms > 0 and len(pool.last_worker_ms) == 2


@needs_two_cpus
def test_outputs_follow_the_inputs_when_the_rows_are_permuted(pool):
    import torch

    x = make_inputs("tiny-cnn", 8, seed=6)
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(0))
    a, _ = pool.run(x)
    b, _ = pool.run(x[perm])
    assert outputs_close(b, a[perm])[0]


@needs_two_cpus
def test_only_small_control_messages_cross_the_pipes(pool):
    x = make_inputs("tiny-cnn", 8)
    before = pool.control_bytes
    for _ in range(3):
        pool.run(x)
    per_batch = (pool.control_bytes - before) / 3
    assert per_batch < 200 < x.numel() * x.element_size()  # 393 KB of images, a few bytes of control


@needs_two_cpus
def test_a_batch_of_the_wrong_shape_is_refused(pool):
    with pytest.raises(ExecutorError, match=r"batch of shape \[4, 3, 64, 64\] does not match the pool's \[8, 3, 64, 64\]"):
        pool.run(make_inputs("tiny-cnn", 4))


SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from packrat_sim.plan import Instance, Plan
    from real_runner.executor import InstancePool
    from real_runner.models import make_inputs

    if __name__ == "__main__":
        pool = InstancePool("tiny-mlp", Plan((Instance(1, 2),) * 2, 4, 2), warmup=1).start()
        print(json.dumps(pool.pids), flush=True)
        x = make_inputs("tiny-mlp", 4)
        if sys.argv[1] == "loop":
            while True:  # until SIGINT
                pool.run(x)
                time.sleep(0.001)
        pool.run(x)  # then exit normally without closing the pool
    """
)


def _start(tmp_path, mode):
    script = tmp_path / "serve.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, str(script), mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=str(tmp_path))


def test_no_worker_outlives_its_pool_after_sigint_or_a_normal_exit(tmp_path):
    interrupted, finished = _start(tmp_path, "loop"), _start(tmp_path, "exit")
    pids = json.loads(interrupted.stdout.readline())
    time.sleep(0.5)
    interrupted.send_signal(signal.SIGINT)
    _, err = interrupted.communicate(timeout=60)
    assert interrupted.returncode != 0 and "KeyboardInterrupt" in err
    pids_after_exit = json.loads(finished.stdout.readline())
    assert finished.wait(timeout=60) == 0, finished.stderr.read()
    deadline = time.monotonic() + 10
    while not all(is_gone(p) for p in pids + pids_after_exit) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(is_gone(p) for p in pids + pids_after_exit)


# ---- issue 14: the dispatcher copies on its own thread; workers get a deliberate OpenMP policy


@needs_two_cpus
def test_workers_are_spawned_with_the_bounded_openmp_wait_policy_by_default(pool):
    env = Path(f"/proc/{pool.pids[0]}/environ").read_bytes().split(b"\0")
    assert b"GOMP_SPINCOUNT=10000" in env and b"PACKRAT_WORKER_OMP_POLICY=bounded" in env
    assert pool.worker_settings["omp_wait_policy"] == "bounded"
    assert "GOMP_SPINCOUNT" not in os.environ  # the parent's environment is restored


def test_an_unknown_openmp_policy_is_refused_naming_it():
    with pytest.raises(ExecutorError, match="'spin-forever'"):
        InstancePool("tiny-mlp", Plan((Instance(1, 1),), 1, 1), omp_policy="spin-forever")


@needs_two_cpus
def test_a_smaller_batch_needs_a_one_instance_pool(pool):
    with pytest.raises(ExecutorError, match="one-instance pool"):
        pool.run(make_inputs("tiny-cnn", 2, 0), rows=2)


def test_a_one_instance_pool_runs_any_smaller_batch_through_the_same_path_and_the_dispatcher_stays_single_threaded():
    import torch

    model = build_model("tiny-mlp", seed=0)
    before = torch.get_num_threads()
    with InstancePool("tiny-mlp", Plan((Instance(1, 4),), 4, 1), warmup=1) as p:
        for n in (1, 3, 4):
            x = make_inputs("tiny-mlp", n, 5)
            out, ms = p.run(x, rows=n)
            with torch.inference_mode():
                ok, _ = outputs_close(out, model(x))
            assert out.shape[0] == n and ok and ms > 0
        with pytest.raises(ExecutorError, match="rows=5"):
            p.run(make_inputs("tiny-mlp", 4, 5), rows=5)
    assert torch.get_num_threads() == before  # the dispatcher never changes its own torch threads


@needs_two_cpus
def test_a_dead_worker_is_reported_and_closing_the_pool_stops_the_others(pool):
    """Runs last in this module: it breaks the shared pool on purpose. The worker is dead before
    the batch is sent (a worker that died while idle is reported as dead, not as a broken pipe)."""
    pids = pool.pids
    os.kill(pids[0], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while not is_gone(pids[0]) and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(WorkerError, match=r"worker 0 of tiny-cnn died \(exit code (-9|None)\)"):
        pool.run(make_inputs("tiny-cnn", 8))
    pool.close()
    assert all(is_gone(pid) for pid in pids)

