"""The conditions a measurement ran under, and the one line that says when they make it doubtful.

A measurement (``run``'s, ``run --load``'s, ``demo``'s real step, the dashboard's Hardware
run) goes through :func:`watched`, which opens a :class:`ConditionsProbe` before it and closes
it after (:func:`real_runner.bench.run_bench` opens its own around the whole benchmark); the
probe reads the 1-minute load average (``/proc/loadavg``) at both ends and the run-queue wait
of the processes it watches (``/proc/PID/task/*/schedstat``: time runnable but waiting for a
CPU). The caller records :func:`conditions_report` (:meth:`Conditions.to_json` plus ``note``)
beside its figures and prints :func:`measurement_note` when it is not None: when the machine
was busy, or when the measurement is more than ``OFF_FACTOR`` times off its prediction, with
the likely cause.

Only the probe (and so :func:`watched`) reads ``/proc``; :class:`Conditions`,
:func:`measurement_note` and :func:`conditions_report` are pure.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from real_runner.profiling import read_loadavg, read_runq_wait_ns

#: A load average above this many runnable tasks per usable CPU is a busy machine: the
#: measurement itself keeps up to one task per CPU runnable (its workers), so only a load
#: beyond that, from other processes, counts.
BUSY_LOAD_PER_CPU = 2.0
#: Run-queue wait above this many ms per second of wall time (10%) is a busy machine.
BUSY_RUNQ_MS_PER_S = 100.0
#: A measurement this many times off its prediction (either way) is called out.
OFF_FACTOR = 2.0

T = TypeVar("T")


@dataclass(frozen=True)
class Conditions:
    """What the machine was doing during a measurement: ``loadavg_1m`` (mean of the 1-minute
    load average before and after; None where unreadable), ``cpus`` (CPUs this process may
    use, >= 1), ``runq_wait_ms_per_s`` (ms the watched processes spent runnable but waiting
    for a CPU, per second of wall time, summed over them; None where unreadable) and
    ``seconds`` (wall time covered)."""

    loadavg_1m: float | None
    cpus: int
    runq_wait_ms_per_s: float | None
    seconds: float

    @property
    def busy(self) -> bool:
        """The load average exceeded ``BUSY_LOAD_PER_CPU`` per CPU (the measurement's own
        workers count in it, hence more than one per CPU), or the watched processes
        waited for a CPU more than ``BUSY_RUNQ_MS_PER_S`` ms per second."""
        loaded = self.loadavg_1m is not None and self.loadavg_1m > BUSY_LOAD_PER_CPU * self.cpus
        waited = self.runq_wait_ms_per_s is not None and self.runq_wait_ms_per_s > BUSY_RUNQ_MS_PER_S
        return loaded or waited

    def describe(self) -> str:
        """``load average 7.2 on 2 CPUs, 310 ms/s waiting for a CPU`` (the parts known)."""
        parts = []
        if self.loadavg_1m is not None:
            parts.append(f"load average {self.loadavg_1m:.1f} on {self.cpus} CPU{'s' if self.cpus != 1 else ''}")
        if self.runq_wait_ms_per_s is not None:
            parts.append(f"{self.runq_wait_ms_per_s:.0f} ms/s waiting for a CPU")
        return ", ".join(parts) or "no load figures readable here"

    def to_json(self) -> dict:
        return {"loadavg_1m": self.loadavg_1m, "cpus": self.cpus, "runq_wait_ms_per_s": self.runq_wait_ms_per_s,
                "seconds": self.seconds, "busy": self.busy}


def measurement_note(conditions: Conditions, predicted_ms: float | None = None,
                     measured_ms: float | None = None) -> str | None:
    """One line when a measurement needs a comment, else None. Pure.

    * off by more than ``OFF_FACTOR`` on a busy machine: the other processes are the likely cause;
    * off by more than ``OFF_FACTOR`` on a quiet machine: the profile likely does not
      describe this machine as it is now;
    * busy, not off (or nothing to compare): the figures may be slowed by other processes.
    """
    off = None
    if predicted_ms and measured_ms and predicted_ms > 0 and measured_ms > 0:
        ratio = measured_ms / predicted_ms
        if ratio > OFF_FACTOR or ratio < 1.0 / OFF_FACTOR:
            off = f"measured {measured_ms:.2f} ms is {ratio:.2f}x the predicted {predicted_ms:.2f} ms"
    if off and conditions.busy:
        return (f"{off}; the machine was busy ({conditions.describe()}): other processes likely slowed it; "
                "measure again on a quiet machine")
    if off:
        return (f"{off} on a quiet machine ({conditions.describe()}): the profile likely does not describe this "
                "machine as it is now (another machine, other load, or too few repeats); re-measure it with "
                "`packrat profile`")
    if conditions.busy:
        return (f"the machine was busy ({conditions.describe()}): these figures may be slowed by other processes; "
                "measure again on a quiet machine")
    return None


def conditions_report(conditions: Conditions, predicted_ms: float | None = None,
                      measured_ms: float | None = None) -> dict:
    """The JSON a report records as its ``conditions``: :meth:`Conditions.to_json` plus
    ``note``, the :func:`measurement_note` of ``conditions`` and (when both given, in ms) the
    predicted and measured figures (a line, or None). Pure."""
    return dict(conditions.to_json(), note=measurement_note(conditions, predicted_ms, measured_ms))


def watched(measure: Callable[[], T], probe: ConditionsProbe | None = None) -> tuple[T, Conditions]:
    """Run ``measure()`` under watch: ``probe`` (default: a new :class:`ConditionsProbe` of
    this process and its children) is started just before and stopped just after it. Returns
    ``(what measure returned, the Conditions between)``; an exception from ``measure`` goes
    on unchanged (the probe holds nothing to release). Reads ``/proc`` through the probe."""
    probe = (probe or ConditionsProbe()).start()
    result = measure()
    return result, probe.stop()


def self_and_children() -> list[int]:
    """This process and its direct children (worker processes), from
    ``/proc/self/task/*/children``; just this process where that is unreadable."""
    pids = [os.getpid()]
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return pids
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/children", encoding="ascii") as fh:
                pids.extend(int(x) for x in fh.read().split())
        except (OSError, ValueError):
            continue
    return pids


class ConditionsProbe:
    """Samples the load average and the run-queue wait of ``pids()`` (default: this process
    and its children, :func:`self_and_children`)
    at :meth:`start` and :meth:`stop`; :meth:`stop` returns the :class:`Conditions` between.
    Processes that appear only at the end (workers started meanwhile) count from their
    start; those gone at the end are left out."""

    def __init__(self, pids: Callable[[], Iterable[int]] | None = None) -> None:
        self._pids = pids or self_and_children
        self._t0 = 0.0
        self._load0: float | None = None
        self._wait0: dict[int, int | None] = {}

    def start(self) -> ConditionsProbe:
        self._t0 = time.monotonic()
        self._load0 = read_loadavg()
        self._wait0 = {pid: read_runq_wait_ns(pid) for pid in self._pids()}
        return self

    def stop(self) -> Conditions:
        seconds = max(time.monotonic() - self._t0, 1e-9)
        load1 = read_loadavg()
        loads = [x for x in (self._load0, load1) if x is not None]
        waits = [(pid, read_runq_wait_ns(pid)) for pid in self._pids()]
        known = [(w1 - (self._wait0.get(pid) or 0)) / 1e6 for pid, w1 in waits if w1 is not None]
        return Conditions(loadavg_1m=sum(loads) / len(loads) if loads else None, cpus=len(os.sched_getaffinity(0)),
                          runq_wait_ms_per_s=sum(known) / seconds if known else None, seconds=seconds)


__all__ = ["BUSY_LOAD_PER_CPU", "BUSY_RUNQ_MS_PER_S", "OFF_FACTOR", "Conditions", "ConditionsProbe",
           "conditions_report", "measurement_note", "self_and_children", "watched"]
