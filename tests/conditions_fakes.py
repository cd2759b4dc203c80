"""Fake machine conditions for the tests of what reports them (bench, run, run --load, the
Hardware page): a busy and a quiet machine, and a probe that logs when it starts and stops."""

from __future__ import annotations

from real_runner.conditions import Conditions

BUSY = Conditions(loadavg_1m=9.0, cpus=2, runq_wait_ms_per_s=300.0, seconds=1.0)
QUIET = Conditions(loadavg_1m=0.1, cpus=2, runq_wait_ms_per_s=1.0, seconds=1.0)


class FakeProbe:
    """Stands for a ConditionsProbe: logs ``probe started``/``probe stopped`` in ``events`` and
    reports ``seen``."""

    def __init__(self, seen: Conditions, events: list[str]) -> None:
        self.seen, self.events = seen, events

    def start(self) -> FakeProbe:
        self.events.append("probe started")
        return self

    def stop(self) -> Conditions:
        self.events.append("probe stopped")
        return self.seen


def probe_class(seen: Conditions, events: list[str]):
    """A stand-in for the ConditionsProbe class (to monkeypatch it): every probe it makes
    reports ``seen`` and logs in ``events``."""
    return lambda *args, **kwargs: FakeProbe(seen, events)
