"""Issue 30 item 2: the copy-CLI box of every page reproduces what the page shows, and the URL
carries every input.

For each page: set a form, read the command from its box, run that very command with the CLI
(in process, ``--json`` added) and compare its numbers (plan, latency, p99, verdict, schedules)
with the numbers on the page. Where the command line cannot express an input, the page must
say that the command does NOT reproduce it.
"""

from __future__ import annotations

import csv
import json
import shlex

import pytest

STALE = [
    {"client": 0, "input": {"op": "write", "value": 1}, "output": None, "call": 0, "ret": 10},
    {"client": 1, "input": {"op": "read"}, "output": 1, "call": 5, "ret": 15},
    {"client": 0, "input": {"op": "write", "value": 2}, "output": None, "call": 20, "ret": 30},
    {"client": 1, "input": {"op": "read"}, "output": 1, "call": 31, "ret": 40},
]


@pytest.fixture(autouse=True)
def jobs_in_threads(monkeypatch):
    """Jobs in a thread of this process (no child to spawn and import): the numbers are the
    same, the tests faster (Cancel, which needs the child process, is tested elsewhere)."""
    monkeypatch.setenv("PACKRAT_UI_JOBS", "thread")


def box(at, verb: str) -> list[str]:
    """The argv (without ``packrat``) of the page's ``packrat VERB`` box."""
    cmds = [c.value for c in at.code if c.value.startswith(f"packrat {verb} ")]
    assert len(cmds) == 1, [c.value for c in at.code]
    argv = shlex.split(cmds[0])
    assert argv[:2] == ["packrat", verb]
    return argv[1:]


def run_json(cli, argv: list[str], codes=(0,)) -> dict:
    code, out, err = cli(*argv, "--json")
    assert code in codes, (argv, code, err)
    return json.loads(out)


def not_reproduced(at) -> list[str]:
    return [w.value for w in at.warning if "does NOT reproduce the page" in w.value]


def url(at) -> dict[str, str]:
    """The page's URL query parameters (one value each)."""
    return {k: (v[0] if isinstance(v, list) else v) for k, v in dict(at.query_params).items()}


def ms(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f} ms"


# ------------------------------------------------------------------- planner


def test_planner_box_reproduces_the_plan_with_and_without_idle_cores(open_page, h, cli):
    from ui.dashboard.data import compact

    at = open_page("planner")
    at.number_input(key="planner.batch").set_value(1).run()
    # the page's default is the CLI's: idle cores allowed (transformer-16, B=1, T=16: 1 x 13t x 1)
    for exact in (False, True):
        if exact:
            at.checkbox(key="planner.allow_idle").uncheck().run()
        h.no_errors(at)
        argv = box(at, "plan")
        assert ("--exact-cores" in argv) == exact
        report = run_json(cli, argv)
        m = h.metrics(at)
        assert f"`{compact(report['groups'])}`" in h.texts(at)
        assert m["Plan latency"] == ms(report["predicted_ms"])
        assert m["Fat (1 instance x T threads)"] == ms(report["fat_ms"])
        assert m["Thin (min(T, B) x 1 thread)"] == ms(report["thin_ms"])
        assert report["groups"] == ([[1, 16, 1]] if exact else [[1, 13, 1]])
    assert not not_reproduced(at)
    # the URL carries the form: a new session opened on it shows the same plan
    link = url(at)
    assert (link["planner.batch"], link["planner.cores"], link["planner.allow_idle"]) == ("1", "16", "false")


def test_planner_certificate_box_gives_the_same_verdict(open_page, h, cli):
    at = open_page("planner")
    at.number_input(key="planner.batch").set_value(8).run()
    at.number_input(key="planner.cores").set_value(4).run()
    at.button(key="planner.btn.certify").click().run()
    h.no_errors(at)
    (verdict,) = [s.value for s in at.success if s.value.startswith("OPTIMAL")]
    cert = run_json(cli, box(at, "verify"))
    assert cert["result"] == "optimal"
    assert f"{cert['latency_ms']:.2f} ms" in verdict


def test_planner_says_when_the_box_cannot_carry_an_option(open_page, h):
    at = open_page("planner")
    at.number_input(key="planner.max_instances").set_value(2).run()
    h.no_errors(at)
    (warning,) = not_reproduced(at)
    assert "at most 2 instances" in warning
    assert "--max-instances 2" in " ".join(box(at, "verify"))


# ----------------------------------------------------------------- simulator


def sim_numbers(at, h) -> dict[str, str]:
    return {k.split(":")[0]: v for k, v in h.metrics(at).items() if k.endswith(": p99 latency")}


def test_simulator_box_reproduces_the_p99_of_every_policy(open_page, h, cli):
    at = open_page("simulator")
    at.number_input(key="sim.seed").set_value(1).run()
    at.number_input(key="sim.cores").set_value(8).run()
    at.button(key="sim.btn.run").click().run()
    h.no_errors(at)
    assert not not_reproduced(at)
    argv = box(at, "simulate")
    assert "--seed" in argv and argv[argv.index("--seed") + 1] == "1"
    out = run_json(cli, argv)
    page = sim_numbers(at, h)
    assert page == {r["name"]: ms(r["stats"]["request_latency"]["p99_ms"]) for r in out["results"]}
    table = h.frame(at, "policy")
    assert list(table["requests"]) == [r["stats"]["requests"] for r in out["results"]]
    assert list(table["reconfigurations"]) == [len(r["reconfigurations"]) for r in out["results"]]


def test_simulator_start_up_and_warm_up_reach_the_box_and_the_copied_command_matches_the_page(open_page, h, cli):
    at = open_page("simulator")
    at.number_input(key="sim.start_ms").set_value(0.0).run()
    at.number_input(key="sim.warmup").set_value(0).run()
    h.no_errors(at)
    at.multiselect(key="sim.policies").set_value(["packrat"]).run()
    at.button(key="sim.btn.run").click().run()
    argv = box(at, "simulate")
    assert "--start-ms" in argv and "--warmup" in argv and not not_reproduced(at)
    out = run_json(cli, argv)
    assert sim_numbers(at, h)["packrat"] == ms(out["results"][0]["stats"]["request_latency"]["p99_ms"])


# -------------------------------------------------------------- verification


def test_explorer_box_and_url_carry_the_protocol_parameters(open_page, h, cli):
    from streamlit.testing.v1 import AppTest

    at = open_page("verification")
    at.selectbox(key="explore.variant").set_value("ack-before-switch").run()
    at.number_input(key="explore.p.reconfig.clients").set_value(2).run()
    argv = box(at, "explore")
    assert "clients=2" in argv
    at.button(key="explore.btn.run").click().run()
    (banner,) = [e.value for e in at.error if e.value.startswith("VIOLATION")]
    out = run_json(cli, argv, codes=(1,))
    assert out["verdict"] == "VIOLATION"
    assert banner.startswith(f"VIOLATION found at schedule {out['first_violation_at']}: {out['reason']}")
    assert f"{out['schedules']} schedules, {out['states']} states" in banner
    m = h.metrics(at)
    assert (m["Schedules"], m["States"]) == (str(out["schedules"]), str(out["states"]))

    # a shared link reopens the same form (clients=2, not the default 1) and the same command
    link = url(at)
    assert link["explore.p.reconfig.clients"] == "2"
    other = AppTest.from_file(str(h.APP), default_timeout=180)
    for k, v in link.items():
        other.query_params[k] = v
    other.switch_page("pages/verification.py").run()
    assert box(other, "explore") == argv


def test_history_check_box_gives_the_same_verdict(open_page, h, cli, tmp_path, monkeypatch):
    at = open_page("verification")
    at.radio(key="verify.section").set_value("History checker").run()
    at.file_uploader(key="verify.up.history").upload("stale.json", h.history(STALE), "application/json").run()
    at.button(key="verify.btn.check").click().run()
    assert any(e.value.startswith("NOT LINEARIZABLE: stale.json") for e in at.error)
    argv = box(at, "check")
    (tmp_path / "stale.json").write_bytes(h.history(STALE))
    monkeypatch.chdir(tmp_path)
    out = run_json(cli, argv, codes=(1,))
    assert (out["result"], out["operations"], out["partitions"]) == ("illegal", 4, 1)
    assert f"operation {out['details'][0]['blocked']} cannot be linearized" in h.texts(at)
    assert (tmp_path / "report.html").exists()


# --------------------------------------------------------------------- sweep


@pytest.mark.slow
def test_sweep_box_reproduces_the_table(open_page, h, cli, tmp_path):
    at = h.small_sweep(open_page("sweep"))
    at.number_input(key="sweep.workers").set_value(1)
    at.run()
    at.button(key="sweep.run").click().run()
    h.no_errors(at)
    argv = box(at, "sweep")
    assert argv[argv.index("--workers") + 1] == "1"
    run_json(cli, [*argv, "--out", str(tmp_path)])
    with open(tmp_path / "results.csv", newline="") as fh:
        rows = {r["run_id"]: float(r["p99_ms"]) for r in csv.DictReader(fh)}
    table = h.frame(at, "p99_ms")
    assert dict(zip(table["run_id"], table["p99_ms"])) == pytest.approx(rows)
    link = url(at)
    assert link["sweep.cores"] == "4" and link["sweep.policies"] == "packrat,fat"
