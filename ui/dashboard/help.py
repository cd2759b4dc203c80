"""One-line help for every strategy, model, policy and timeline label of the dashboard,
each tied to the README section that explains it (served from this machine, offline).

Pure: no streamlit. :func:`readme_section` reads README.md at the repository root, or, in an
installed wheel (no checkout around it), the same text from the distribution's metadata.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"

#: Exploration strategies (checker.explore.STRATEGIES).
STRATEGY_HELP = {
    "dfs": "depth-first over every schedule, pruning states already seen (complete)",
    "bfs": ("breadth-first, pruning states already seen: the first counterexample is a shortest one "
            "(complete; also judges eventually properties)"),
    "exhaustive": "every schedule, no pruning: the slowest complete search, the reference",
    "dpor": "dynamic partial-order reduction: one schedule per order of dependent deliveries (complete)",
    "transdpor": "DPOR with transitive dependencies: fewer schedules than dpor, still complete",
    "keyaware": "transdpor that treats deliveries on different keys as independent (complete per key)",
    "ired": "transdpor with DS2's IRed rule: a race is reversed at the receive that started its chain (complete)",
    "dpired": "dpor with DS2's IRed rule: a race is reversed at the receive that started its chain (complete)",
    "dpliviola": "dpired that treats deliveries on different keys as independent (complete per key)",
    "random": "random schedules from a seed: finds shallow bugs fast, never says OK",
    "pct": "probabilistic concurrency testing: random priorities with d - 1 change points, never says OK",
    "delay-bounded": "oldest-message-first with at most K deviations: complete only up to K delays",
    "bita": "coverage-guided: schedules aimed at uncovered orders of one actor's receives; reports coverage, never says OK",
}

#: Sequential models of the linearizability checker (checker.models.MODELS).
MODEL_HELP = {
    "register": "a read/write register: a read returns the last write linearized before it",
    "cas-register": "a register with compare-and-set: cas(a, b) succeeds only when the value is a",
    "kv": "a key-value store: one register per key, checked key by key (P-compositionality)",
    "serving": "DESIGN.md's reconfiguration spec: each batch runs in the epoch current when it linearizes",
}

#: Simulator policies (packrat_sim.simulator.POLICIES) and the planner's own plan.
POLICY_HELP = {
    "packrat": "the optimizer's plan, re-planned online from the batch-size estimator (reconfigures)",
    "adaptive": "re-plans online from the observed load and explains each reconfiguration",
    "fat": "one instance with all T threads on the whole batch (static baseline)",
    "thin": "min(T, B) single-thread instances (static baseline)",
    "planner's plan": "the plan shown on the Planner page, kept fixed (no reconfiguration)",
}

#: Labels of the simulator's timelines and time series.
TIMELINE_HELP = {
    "epoch": "e<N>: the N-th plan of the run; a reconfiguration moves the run to the next epoch",
    "start + warm-up": "new instances starting and warming up before the routing switch (cores shared)",
    "reconfigure": "the controller decided to change plan (the estimator saw another batch size)",
    "switch": "routing moved to the new epoch in one step; reconfigure returned",
    "latency": "request latency: arrival to answer, ms",
    "throughput": "requests answered per second, per time bin",
    "queue": "requests arrived but not yet dispatched to an instance",
}

#: Planner strategies (baselines and plan) on the Planner page.
PLAN_HELP = {
    "plan": "the Packrat DP's optimum: the fastest multiset of (threads, sub-batch) instances",
    "fat": "one instance with T threads on the whole batch: the usual default",
    "thin": "min(T, B) instances of one thread each, the batch split evenly",
}

#: The README section each help table points to.
SECTIONS = {
    "strategy": "Exploring every schedule of a protocol",
    "model": "Checking histories",
    "policy": "Simulating",
    "timeline": "Simulating",
    "plan": "Planning",
    "profile": "Profiles",
    "certificate": "Proving a plan optimal",
    "hardware": "Running for real",
    "dashboard": "Dashboard",
}


@cache
def _readme() -> str:
    """README.md of this checkout; without one, :func:`_installed_readme`."""
    try:
        return README.read_text(encoding="utf-8")
    except OSError:
        return _installed_readme()


def _installed_readme() -> str:
    """The README as the installed distribution's long description (pyproject's ``readme``);
    "" when the toolkit is not installed or its metadata has no description."""
    from importlib import metadata

    from ui import DISTRIBUTION

    try:
        text = metadata.metadata(DISTRIBUTION).json.get("description", "")
    except metadata.PackageNotFoundError:
        return ""
    return text if isinstance(text, str) else ""


@cache
def readme_section(title: str) -> str:
    """The markdown of README's section ``title`` (heading included, up to the next heading
    of the same or a higher level); "" when there is no such section."""
    lines = _readme().splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(#+)\s+(.*)$", line)
        if m and m.group(2).strip() == title:
            level = len(m.group(1))
            out = [line]
            for nxt in lines[i + 1:]:
                n = re.match(r"^(#+)\s", nxt)
                if n and len(n.group(1)) <= level:
                    break
                out.append(nxt)
            return "\n".join(out).strip()
    return ""


def table_help(table: dict[str, str], kind: str) -> str:
    """Markdown help listing every entry of ``table``, ending with its README section."""
    body = "\n".join(f"- **{k}**: {v}" for k, v in table.items())
    return f"{body}\n\nREADME: *{SECTIONS[kind]}* (open *README* below the form)."
