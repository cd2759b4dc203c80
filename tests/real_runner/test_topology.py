"""Topology from sysfs, and core assignment: disjoint, physical cores first, one socket each."""

from __future__ import annotations

import os

import pytest

from packrat_sim.plan import Instance, Plan
from real_runner.topology import (
    LogicalCpu,
    Topology,
    TopologyError,
    assign_cores,
    check_threads,
    detect,
    format_cpus,
    pin_plan,
)


def fake_sysfs(tmp_path, sockets=2, cores=2, smt=2):
    """A sysfs tree numbered like Linux on Intel: siblings are offset by the number of cores."""
    n_phys = sockets * cores
    for h in range(smt):
        for s in range(sockets):
            for c in range(cores):
                cpu = h * n_phys + s * cores + c
                d = tmp_path / f"cpu{cpu}" / "topology"
                d.mkdir(parents=True)
                (d / "physical_package_id").write_text(f"{s}\n")
                (d / "core_id").write_text(f"{c}\n")
    return str(tmp_path)


@pytest.fixture
def two_sockets(tmp_path):
    """2 sockets x 2 cores x 2 SMT: socket 0 = CPUs 0,1 (+ siblings 4,5), socket 1 = 2,3 (+ 6,7)."""
    return detect(fake_sysfs(tmp_path), allowed=range(8), cpuinfo=str(tmp_path / "none"))


def test_detect_reads_sockets_physical_cores_and_smt_siblings(two_sockets):
    topo = two_sockets
    assert (topo.logical, topo.physical, topo.sockets, topo.smt) == (8, 4, (0, 1), True)


def test_physical_cores_come_before_their_smt_siblings(two_sockets):
    assert two_sockets.preferred_order() == [0, 1, 4, 5, 2, 3, 6, 7]
    assert two_sockets.preferred_order(socket=1) == [2, 3, 6, 7]


def test_instances_get_disjoint_cores_on_one_socket_each(two_sockets):
    cores = assign_cores([2, 2, 2, 2], two_sockets)
    flat = [c for cs in cores for c in cs]
    assert len(flat) == len(set(flat)) == 8
    for cs in cores:
        assert len({two_sockets.socket_of(c) for c in cs}) == 1


def test_two_instances_each_get_whole_physical_cores_before_any_sibling(two_sockets):
    a, b = assign_cores([2, 2], two_sockets)
    assert sorted([a, b]) == [(0, 1), (2, 3)]


def test_an_instance_larger_than_every_socket_is_refused_unless_spanning_is_allowed(two_sockets):
    with pytest.raises(TopologyError, match="does not fit in one socket"):
        assign_cores([6], two_sockets)
    (cores,) = assign_cores([6], two_sockets, allow_span=True)
    assert len(cores) == 6


def test_a_plan_needing_more_cores_than_allowed_is_refused_unless_oversubscribed(two_sockets):
    with pytest.raises(TopologyError, match="needs 10 cores but only 8 CPUs are allowed"):
        assign_cores([4, 4, 2], two_sockets)
    shared = assign_cores([4, 4, 2], two_sockets, allow_oversubscribe=True)
    assert [len(c) for c in shared] == [4, 4, 2]


def test_the_allowed_cpu_set_restricts_the_topology(tmp_path):
    topo = detect(fake_sysfs(tmp_path), allowed={0, 1, 4}, cpuinfo=str(tmp_path / "none"))
    assert topo.ids == (0, 1, 4) and topo.physical == 2 and topo.sockets == (0,)
    assert topo.preferred_order() == [0, 1, 4]


def test_without_sysfs_every_cpu_is_its_own_core_on_socket_zero(tmp_path):
    topo = detect(str(tmp_path / "nothing"), allowed={0, 1, 2})
    assert (topo.physical, topo.sockets, topo.smt) == (3, (0,), False)


def test_a_plan_file_that_names_its_cores_keeps_them_if_they_are_allowed(two_sockets):
    plan = Plan((Instance(1, 2, (5,)), Instance(1, 2, (7,))), 4, 2)
    assert pin_plan(plan, two_sockets)[1] == [(5,), (7,)]
    with pytest.raises(TopologyError, match="CPUs 9"):
        pin_plan(Plan((Instance(1, 4, (9,)),), 4, 1), two_sockets)


def test_pinning_a_plan_fills_in_disjoint_cores(two_sockets):
    pinned, cores = pin_plan(Plan((Instance(2, 3), Instance(2, 5)), 8, 4), two_sockets)
    assert [i.cores for i in pinned.instances] == cores and len({c for cs in cores for c in cs}) == 4


def test_thread_counts_beyond_the_allowed_cpus_are_named(two_sockets):
    with pytest.raises(TopologyError, match="threads 9 is beyond the 8 CPUs this process may use \\(0-7\\)"):
        check_threads([1, 9], two_sockets)


def test_this_machine_is_detected_with_its_affinity():
    topo = detect()
    assert set(topo.ids) == os.sched_getaffinity(0)
    m = topo.machine()
    assert m.logical_cores == topo.logical and m.torch_version.startswith("2.")


def test_cpu_lists_print_compactly():
    assert format_cpus([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"
    assert Topology((LogicalCpu(0, 0, 3),)).describe().startswith("1 allowed CPUs (3)")


def test_the_worker_environment_carries_the_openmp_policy_and_is_restored(monkeypatch):
    import os

    from real_runner.topology import OMP_POLICIES, omp_policy, worker_environment

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("PACKRAT_OMP_POLICY", raising=False)
    assert omp_policy() == "bounded" and set(OMP_POLICIES) == {"default", "passive", "bounded"}
    with worker_environment("passive"):
        assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    assert "OMP_WAIT_POLICY" not in os.environ
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # a user's explicit setting wins
    with worker_environment("passive"):
        assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    monkeypatch.setenv("PACKRAT_OMP_POLICY", "default")
    assert omp_policy() == "default"
    monkeypatch.setenv("PACKRAT_OMP_POLICY", "nope")
    with pytest.raises(ValueError, match="'nope'"):
        omp_policy()
