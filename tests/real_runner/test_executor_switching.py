"""Switching plans in place: a re-route moves no process, a retarget moves every thread of a
warm worker to new CPUs and a new thread count, a respawn starts a process only when no warm
worker can serve, and the kind executed is the kind the policy prices."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from rr_helpers import ALLOWED, is_gone, needs_two_cpus

from checker import check
from checker.linearizability import Verdict
from packrat_sim.plan import Instance, Plan, fat, thin
from packrat_sim.policy import SwitchModel
from packrat_sim.switching import REROUTE, RESPAWN, RETARGET, switch_kind
from real_runner.executor import InstancePool, WorkerSlot, assign_workers, outputs_close
from real_runner.models import build_model, make_inputs
from real_runner.serving import ServingError, ServingRuntime
from real_runner.topology import thread_cpus

UNEVEN = Plan((Instance(1, 3), Instance(1, 5)), 8, 2)  # thin(8, 2)'s workers, another split


def test_a_target_takes_a_live_worker_so_set_then_one_of_its_thread_count_then_any_then_a_parked_one():
    slots = [WorkerSlot(1, (0,)), WorkerSlot(1, (1,)), WorkerSlot(1, (0, 1), parked=True), None]
    assert assign_workers(slots, [0, 1], [(1, (1,)), (1, (0,))]) == ((1, 0), ())
    assert assign_workers(slots, [0, 1], [(2, (0, 1))]) == ((0,), (1,))  # the other live worker parks
    assert assign_workers(slots, [0], [(1, (1,)), (1, (0,))]) == ((2, 0), ())  # the parked one serves
    assert assign_workers(slots, [0], [(1, (1,)), (1, (0,)), (1, (2,))]) == ((2, 0, None), ())  # None: a new process


def test_a_re_route_keeps_each_worker_on_its_own_cores():
    slots = [WorkerSlot(2, (0, 1)), WorkerSlot(1, (2,))]
    assert assign_workers(slots, [0, 1], [(1, None), (2, None)]) == ((1, 0), ())


@pytest.fixture(scope="module")
def pool():
    """tiny-cnn, 1 x 2t x 8 on 2 CPUs, no standby: its first switch to thin must respawn."""
    if len(ALLOWED) < 2:
        pytest.skip("needs at least 2 allowed CPUs")
    with InstancePool("tiny-cnn", fat(8, 2), warmup=1, capacity=8, standby=0) as p:
        yield p


def _kinds_along(pool, plans):
    """Switch ``pool`` through ``plans``: (kind switch_kind gives, kind the policy prices, kind
    executed, processes started) per switch."""
    out = []
    for plan in plans:
        rule = switch_kind(pool.plan, plan, pool.standby)
        priced = SwitchModel(standby=pool.standby).kind(pool.plan, plan, 2)
        report = pool.apply(plan)
        out.append((rule, priced, report.kind, len(report.spawned)))
    return out


@needs_two_cpus
def test_the_kind_the_runner_executes_is_the_kind_switch_kind_gives_and_the_policy_prices(pool):
    """Runs first in this module: the pool starts with no standby, so its first switch respawns."""
    steps = _kinds_along(pool, [thin(8, 2), fat(8, 2), thin(8, 2), UNEVEN, thin(16, 2), thin(8, 2)])
    assert [s[2] for s in steps] == [RESPAWN, RETARGET, RETARGET, REROUTE, REROUTE, REROUTE]
    assert all(rule == priced == executed for rule, priced, executed, _ in steps), steps
    assert [s[3] for s in steps] == [1, 0, 0, 0, 0, 0]  # one process started, for the respawn only
    assert pool.capacity == 16  # the re-route to a batch of 16 grew the shared buffers


def _utime_stime(pid: int) -> int:
    """CPU time (clock ticks) process ``pid`` has used, all its threads."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@needs_two_cpus
def test_a_retarget_moves_every_thread_of_the_worker_and_the_parked_one_holds_no_core(pool):
    pool.apply(thin(8, 2))
    pids = list(pool.pids)
    report = pool.apply(fat(8, 2))
    assert report.kind == RETARGET and len(report.retargeted) == 1 and len(report.parked) == 1
    (worker,) = pool.pids
    assert worker in pids and report.parked[0] in pids  # warm workers, no new process
    threads = thread_cpus(worker)  # read from /proc/PID/task/*/status by this process
    assert len(threads) >= 3 and all(set(c) == set(pool.cores[0]) == set(ALLOWED[:2]) for c in threads.values())
    said = pool.worker_reports[worker]
    assert said["threads"] == 2 and {int(t): set(c) for t, c in said["cpus"].items()} == {
        t: set(c) for t, c in threads.items() if t in {int(x) for x in said["cpus"]}}
    parked = report.parked[0]
    assert pool.worker_reports[parked]["threads"] == 1
    assert all(set(c) == set(ALLOWED) for c in thread_cpus(parked).values())  # no core of its own
    before = _utime_stime(parked)
    time.sleep(0.5)
    assert _utime_stime(parked) - before <= 2  # blocked: it burns no CPU while parked


@needs_two_cpus
def test_a_batch_after_a_retarget_runs_with_the_new_thread_count_and_right_outputs(pool):
    import torch

    x = make_inputs("tiny-cnn", 8, seed=11)
    with torch.inference_mode():
        reference = build_model("tiny-cnn")(x)
    for plan, threads in ((fat(8, 2), (2,)), (thin(8, 2), (1, 1)), (fat(8, 2), (2,))):
        pool.apply(plan)
        out, _ = pool.run(x)
        assert pool.last_threads == threads  # what torch.get_num_threads() said in each worker for this batch
        assert outputs_close(out, reference)[0]
        for pid, cores in zip(pool.pids, pool.cores):
            assert all(set(c) == set(cores) for c in thread_cpus(pid).values())


@needs_two_cpus
def test_a_re_route_moves_no_process_and_sends_no_message(pool):
    import torch

    pool.apply(thin(8, 2))
    pids, cpus, started = list(pool.pids), [thread_cpus(p) for p in pool.pids], len(pool._procs)
    sent = pool.control_bytes
    report = pool.apply(UNEVEN)
    assert report.kind == REROUTE and not (report.retargeted or report.parked or report.spawned)
    assert pool.control_bytes == sent and len(pool._procs) == started  # no message, no process started
    assert sorted(pool.pids) == sorted(pids) and [thread_cpus(p) for p in pids] == cpus
    assert sorted(r[1] - r[0] for r in pool.rows) == [3, 5]
    x = make_inputs("tiny-cnn", 8, seed=12)
    out, _ = pool.run(x)
    with torch.inference_mode():
        assert outputs_close(out, build_model("tiny-cnn")(x))[0]


@needs_two_cpus
def test_a_worker_killed_during_a_retarget_is_recovered_and_nothing_is_lost():
    victims = []

    def kill_a_retargeted_worker(pool, switch):
        (i, *_) = switch.retarget
        pid = pool._procs[i].pid
        victims.append(pid)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not is_gone(pid) and time.monotonic() < deadline:
            time.sleep(0.005)

    stop = threading.Event()

    def client(c):
        while not stop.is_set():
            try:
                rt.infer(8, c)
            except ServingError:
                return

    rt = ServingRuntime("tiny-cnn", thin(8, 2), switch_hook=kill_a_retargeted_worker, standby=0)
    with rt:
        clients = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(2)]
        for t in clients:
            t.start()
        time.sleep(0.3)
        epoch = rt.reconfigure(fat(8, 2))  # worker A retargets to 2 threads (killed), B parks
        rt.switch_hook = None
        time.sleep(0.3)
        assert rt.epoch == epoch == 1 and rt.plan == fat(8, 2)
        assert victims and victims[0] not in rt.pids
        # replaced at the switch (the parked worker retargeted into its place) or, when only the next
        # batch sees the death (a loaded machine can answer the retarget before the kill lands), by
        # the batch fault rule: either way the victim is gone and nothing is lost (below)
        assert all(r["how"] in (RETARGET, RESPAWN) for r in rt.reconfigurations[-1].report.recovered)
        assert rt.infer(8, client="main")["epoch"] == epoch
        stop.set()
        for t in clients:
            t.join(60)
    assert any("during a retarget" in f["error"] or f.get("batch") is not None for f in rt.faults)  # seen, not hidden
    assert all(b.ret_ns is not None and b.error is None for b in rt.batches)  # every batch answered
    history = rt.history()
    answers = [op.input["batch"] for op in history if op.input["op"] == "infer" and op.ret is not None]
    assert sorted(answers) == sorted(b.id for b in rt.batches)  # ... exactly once
    assert check(history, "serving").result is Verdict.OK


@needs_two_cpus
def test_a_switch_that_fails_before_the_new_plan_is_applied_leaves_routing_on_the_old_epoch():
    def fail_while_applying(pool, switch):
        raise RuntimeError("injected failure while applying")

    with ServingRuntime("tiny-cnn", thin(8, 2), switch_hook=fail_while_applying, standby=0) as rt:
        rt.infer(8)
        with pytest.raises(RuntimeError, match="injected failure"):
            rt.reconfigure(fat(8, 2))
        rt.switch_hook = None
        rec = rt.reconfigurations[-1]
        assert not rec.ok and "injected failure" in rec.error
        answer = rt.infer(8)  # the gate reopened: the old epoch still serves, on the same workers
        assert answer["epoch"] == 0 and rt.epoch == 0 and rt.plan == thin(8, 2)
        assert rt.reconfigure(fat(8, 2)) == 1 and rt.infer(8)["epoch"] == 1  # and it can still switch
    history = rt.history()
    assert [op.output["epoch"] for op in history if op.input["op"] == "reconfigure"] == [1]
    assert check(history, "serving").result is Verdict.OK
