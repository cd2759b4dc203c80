"""The linearizability checker against Porcupine (issue 32, item 4), side by side on one machine.

Sets: Porcupine's 103 Jepsen etcd logs (etcd_095 is empty) (cas-register model), each of its 6 kv logs (kv model), and
generated kv histories in Porcupine's format (``--gen-ops`` operations, ``--gen-clients`` clients,
``--gen-keys`` keys; one linearizable, one with a corrupted read).

Timing, interleaved: ``--repeat`` rounds, each timing every file once with ours (parsing, and
``check()`` with one job) and then once with Porcupine's (its own ``parseJepsenLog``/``parseKvLog``
and ``CheckEventsTimeout``, in a Go test binary built once from a temporary copy of Porcupine's
folder with a small harness, when ``go`` is on PATH), so both see the same load; per file the
median of the rounds, summed over the set. For each set it prints ours (parse, check, the part of
the check spent compiling and partitioning, total), Porcupine's, the wall-time ratios (ours /
Porcupine's) and the ratio of CPU time (parse and check, every thread of each process: robust to
a loaded machine, where Porcupine's partitions, run on every core, get more of it than one Python
thread), and whether the verdicts match Porcupine's.
Then each family of sets (etcd, kv, gen) in total, the issue's target (at most 1x wall on each).

Then the interpreter limit: per kv set, the model steps each checker takes (counted in separate,
untimed runs) and its check's CPU time per model step, and a micro-benchmark of the least CPU a
fresh search step costs in this Python, against Porcupine's CPU per model step. Last, the tiny-check
microbenchmark: median microseconds per ``check()`` on 2-4 operation histories (the explorer calls
it once per schedule), side by side with the search alone.

Porcupine's source and test data are read from ``--porcupine`` (default ``../shared/data/porcupine``
beside the repository, or ``$PORCUPINE_DIR``); they are never copied into the repository. Run:

    .venv/bin/python benchmarks/porcupine.py [--repeat 3] [--no-go] [--only etcd,kv,gen,tiny]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from checker.history import History, Operation, parse_history  # noqa: E402
from checker.linearizability import check  # noqa: E402
from checker.linearizability.partition import compile_partitions, make_task  # noqa: E402
from checker.linearizability.search import search  # noqa: E402
from checker.models import get_model  # noqa: E402

GO_HARNESS = r"""package porcupine

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// packratCPU is this process's CPU time so far (ms, user and system, all threads).
func packratCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e6
}

func packratFiles() []string {
	var files []string
	for _, f := range strings.Split(os.Getenv("PACKRAT_FILES"), "\n") {
		if f != "" {
			files = append(files, f)
		}
	}
	return files
}

func packratParse(f string) ([]Event, Model) {
	if strings.HasSuffix(f, ".txt") {
		return parseKvLog(f), kvModel
	}
	return parseJepsenLog(f), etcdModel
}

// TestPackratTiming prints "TIMING file parse_ms check_ms ok|illegal parse_cpu_ms check_cpu_ms" for
// each file named in $PACKRAT_FILES (newline-separated; .txt: kv logs, others: Jepsen etcd logs),
// one run each.
func TestPackratTiming(t *testing.T) {
	for _, f := range packratFiles() {
		c0, t0 := packratCPU(), time.Now()
		events, model := packratParse(f)
		parse, parseCPU := float64(time.Since(t0).Nanoseconds())/1e6, packratCPU()-c0
		c0, t0 = packratCPU(), time.Now()
		res := CheckEventsTimeout(model, events, 0)
		chk, chkCPU := float64(time.Since(t0).Nanoseconds())/1e6, packratCPU()-c0
		verdict := "illegal"
		if res == Ok {
			verdict = "ok"
		}
		fmt.Printf("TIMING %s %.4f %.4f %s %.4f %.4f\n", f, parse, chk, verdict, parseCPU, chkCPU)
	}
}

// TestPackratSteps prints "STEPS file n": the model steps CheckEventsTimeout takes on each file
// (counted through a wrapped Step, in a run that is not timed).
func TestPackratSteps(t *testing.T) {
	for _, f := range packratFiles() {
		events, model := packratParse(f)
		var calls int64
		inner := model.Step
		model.Step = func(state, input, output interface{}) (bool, interface{}) {
			atomic.AddInt64(&calls, 1)
			return inner(state, input, output)
		}
		CheckEventsTimeout(model, events, 0)
		fmt.Printf("STEPS %s %d\n", f, calls)
	}
}
"""


@dataclass(frozen=True)
class Timing:
    """One file's wall times in milliseconds and its verdict (``ok``/``illegal``/...); ``*_cpu_ms``:
    the process's CPU time (all threads) in the same spans; ``prep_ms``: the part of ``check_ms``
    spent compiling and partitioning (ours only; 0 for Porcupine's)."""

    parse_ms: float
    check_ms: float
    verdict: str
    parse_cpu_ms: float
    check_cpu_ms: float
    prep_ms: float = 0.0


def median_timing(runs: list[Timing]) -> Timing:
    """Per-field medians of one file's runs (the verdict of the last)."""
    fields = ("parse_ms", "check_ms", "parse_cpu_ms", "check_cpu_ms", "prep_ms")
    med = {f: statistics.median(getattr(t, f) for t in runs) for f in fields}
    return Timing(verdict=runs[-1].verdict, **med)


def elapsed_ms(fn: Callable[[], object]) -> tuple[float, float, object]:
    """Wall and CPU time of one ``fn()`` (ms), and its value."""
    c0, t0 = time.process_time(), time.perf_counter()
    value = fn()
    return (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000, value


def parse_file(text: str, fmt: str) -> History:
    """Parse like the CLI does with ``--format``; an empty log (etcd_095: the cluster never
    started) is an empty history."""
    return parse_history(text, fmt)


def _format_and_model(path: Path) -> tuple[str, str]:
    """The format and model of one of the benchmark's files (kv for .txt, cas-register for .log)."""
    return ("porcupine-kv", "kv") if path.suffix == ".txt" else ("jepsen", "cas-register")


def prepare(history: History, model: str) -> list:
    """What ``check()`` does before it searches: compile, partition, one task per partition."""
    mdl = get_model(model)
    return [make_task(mdl, key, rows) for key, rows in compile_partitions(history.operations, mdl).items()]


def time_ours(path: Path) -> Timing:
    """One run of our parse and check of one file, and (separately) of the check's preparation."""
    fmt, model = _format_and_model(path)
    text = path.read_text()
    parse_ms, parse_cpu, history = elapsed_ms(lambda: parse_file(text, fmt))
    assert isinstance(history, History)
    check_ms, check_cpu, result = elapsed_ms(lambda: check(history, model))
    prep_ms, _, _ = elapsed_ms(lambda: prepare(history, model))
    return Timing(parse_ms, check_ms, result.result.value, parse_cpu, check_cpu, prep_ms)  # type: ignore[attr-defined]


def our_steps(path: Path) -> tuple[int, int]:
    """(search steps, model steps) of our check of one file (model steps counted through a wrapped
    ``step``, in a run that is not timed)."""
    fmt, model = _format_and_model(path)
    mdl = get_model(model)
    calls = 0

    def counted(state: object, inp: object, out: object) -> tuple[bool, object]:
        nonlocal calls
        calls += 1
        return mdl.step(state, inp, out)

    result = check(parse_file(path.read_text(), fmt), replace(mdl, step=counted))
    return result.steps, calls


def build_harness(porcupine: Path, tmp: Path) -> Path | None:
    """Porcupine's tests with the timing harness, compiled once into a test binary under ``tmp``;
    None when ``go`` is not available."""
    go = shutil.which("go")
    if go is None:
        return None
    work = tmp / "porcupine"
    shutil.copytree(porcupine, work, ignore=shutil.ignore_patterns("test_data"))
    (work / "packrat_timing_test.go").write_text(GO_HARNESS)
    binary = tmp / "porcupine.test"
    env = dict(os.environ, GOFLAGS="-mod=mod", GOCACHE=str(tmp / "cache"))
    proc = subprocess.run([go, "test", "-c", "-o", str(binary), "."], cwd=work, env=env, capture_output=True,
                          text=True, timeout=1800)
    if proc.returncode != 0:
        sys.exit(f"building Porcupine's timing harness failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return binary


def run_harness(binary: Path, files: list[Path], test: str) -> str:
    """The output of one run of the harness's ``test`` over ``files``."""
    env = dict(os.environ, PACKRAT_FILES="\n".join(str(f) for f in files))
    proc = subprocess.run([str(binary), "-test.count=1", "-test.v", "-test.run", f"^{test}$"], cwd=binary.parent,
                          env=env, capture_output=True, text=True, timeout=3600)
    return proc.stdout + proc.stderr


def time_porcupine(binary: Path, files: list[Path]) -> dict[Path, Timing]:
    """One run of Porcupine's parse and check of each file through the harness."""
    out = run_harness(binary, files, "TestPackratTiming")
    found = {Path(m.group(1)): Timing(float(m.group(2)), float(m.group(3)), m.group(4), float(m.group(5)),
                                      float(m.group(6)))
             for m in re.finditer(r"^TIMING (\S+) (\S+) (\S+) (\S+) (\S+) (\S+)$", out, re.MULTILINE)}
    if len(found) != len(files):
        sys.exit(f"the Go harness timed {len(found)} of {len(files)} files:\n{out[-4000:]}")
    return found


def porcupine_steps(binary: Path, files: list[Path]) -> dict[Path, int]:
    """Porcupine's model steps per file (an untimed run of the harness)."""
    out = run_harness(binary, files, "TestPackratSteps")
    return {Path(m.group(1)): int(m.group(2)) for m in re.finditer(r"^STEPS (\S+) (\d+)$", out, re.MULTILINE)}


def time_interleaved(files: list[Path], binary: Path | None, rounds: int) -> tuple[dict[Path, Timing],
                                                                                   dict[Path, Timing] | None]:
    """Our and Porcupine's timings per file, medians of ``rounds`` rounds; each round runs ours
    (every file once) and then Porcupine's (every file once, one harness process), so both see the
    same load on a shared machine."""
    ours: dict[Path, list[Timing]] = {f: [] for f in files}
    theirs: dict[Path, list[Timing]] = {f: [] for f in files}
    for _ in range(rounds):
        for f in files:
            ours[f].append(time_ours(f))
        if binary is not None:
            for f, t in time_porcupine(binary, files).items():
                theirs[f].append(t)
    ours_med = {f: median_timing(ts) for f, ts in ours.items()}
    return ours_med, None if binary is None else {f: median_timing(ts) for f, ts in theirs.items()}


def generate_kv(n_ops: int, clients: int, keys: int, seed: int, corrupt: bool) -> str:
    """A kv history in Porcupine's format from a linearizable store (each operation atomic at a
    random instant inside its interval); with ``corrupt``, one get late in the history returns a
    value the store never held."""
    rng = random.Random(seed)
    events: list[tuple[float, int, str]] = []  # (time, 0 call / 1 return, line)
    store: dict[str, str] = {}
    planned = []
    free = [rng.random() for _ in range(clients)]
    for k in range(n_ops):
        c = min(range(clients), key=free.__getitem__)
        call = free[c]
        dur = rng.expovariate(1.0) + 0.01
        free[c] = call + dur + rng.expovariate(1.0) + 0.01
        kind = rng.choice(("get", "get", "put", "append"))
        planned.append((call + rng.random() * dur, call, call + dur, c, kind, str(rng.randrange(keys)), f"x {c} {k} y"))
    planned.sort()
    bad = next((k for k in range(n_ops * 9 // 10, n_ops) if planned[k][4] == "get"), -1) if corrupt else -1
    for k, (_, call, ret, c, kind, key, value) in enumerate(planned):
        if kind == "get":
            got = store.get(key, "") + (" corrupt" if k == bad else "")
            invoke, done = "nil", f'"{got}"'
        else:
            store[key] = value if kind == "put" else store.get(key, "") + value
            invoke = done = f'"{value}"'
        events.append((call, 0, f'{{:process {c}, :type :invoke, :f :{kind}, :key "{key}", :value {invoke}}}'))
        events.append((ret, 1, f'{{:process {c}, :type :ok, :f :{kind}, :key "{key}", :value {done}}}'))
    events.sort(key=lambda e: (e[0], e[1]))
    return "\n".join(line for _, _, line in events) + "\n"


def tiny_histories() -> list[History]:
    """2-4 operation histories like the explorer's: register and kv, OK and ILLEGAL."""
    reg = [
        [Operation(0, {"op": "write", "value": 1}, None, 0, 2), Operation(1, {"op": "read"}, 1, 1, 3)],
        [Operation(0, {"op": "write", "value": 1}, None, 0, 1), Operation(1, {"op": "read"}, None, 2, 3)],
        [Operation(0, {"op": "write", "value": 1}, None, 0, 3), Operation(1, {"op": "write", "value": 2}, None, 1, 4),
         Operation(2, {"op": "read"}, 2, 5, 6), Operation(0, {"op": "read"}, 1, 7, 8)],
    ]
    kv = [Operation(0, {"op": "put", "key": "a", "value": "x"}, None, 0, 2),
          Operation(1, {"op": "get", "key": "a"}, "x", 1, 3),
          Operation(2, {"op": "append", "key": "b", "value": "y"}, None, 1, 4)]
    return [History(ops, model="register") for ops in reg] + [History(kv, model="kv")]


def tiny_micro(runs: int) -> tuple[float, float]:
    """Median microseconds per ``check()`` and per bare search (one partition, the register model)
    over the tiny histories."""
    hs = tiny_histories()
    reg = get_model("register")

    def bare(h: History) -> None:
        ops = h.operations
        comp = [reg.compile(o.input, o.output) for o in ops]
        gen = search(reg.step, reg.init(), [o.call for o in ops], [o.ret for o in ops], [c[0] for c in comp],
                     [c[1] for c in comp], [False] * len(ops))
        try:
            next(gen)
            gen.send(1 << 30)
        except StopIteration:
            pass

    def per_call_us(fn: Callable[[History], object], items: list[History]) -> float:
        samples = []
        for _ in range(runs):
            t0 = time.perf_counter()
            for h in items:
                fn(h)
            samples.append((time.perf_counter() - t0) / len(items) * 1e6)
        return statistics.median(samples)

    return per_call_us(lambda h: check(h), hs), per_call_us(bare, [h for h in hs if h.model == "register"])


def file_sets(porcupine: Path, gen_dir: Path, args: argparse.Namespace) -> dict[str, list[Path]]:
    """The named sets of files to time."""
    sets: dict[str, list[Path]] = {}
    if "etcd" in args.only:
        logs = sorted((porcupine / "test_data" / "jepsen").glob("etcd_*.log"))
        sets[f"etcd ({len(logs)} logs)"] = logs
    if "kv" in args.only:
        for f in sorted((porcupine / "test_data" / "kv").glob("*.txt")):
            sets[f"kv {f.stem}"] = [f]
    if "gen" in args.only:
        for corrupt in (False, True):
            path = gen_dir / f"gen-{args.gen_ops}-{'bad' if corrupt else 'ok'}.txt"
            path.write_text(generate_kv(args.gen_ops, args.gen_clients, args.gen_keys, args.seed, corrupt))
            sets[f"gen {path.stem}"] = [path]
    return sets


def report_sets(sets: dict[str, list[Path]], ours: dict[Path, Timing], theirs: dict[Path, Timing] | None) -> None:
    """Print one line per set: ours (parse, check and the part of it spent preparing, total),
    Porcupine's, the ratios, verdicts."""
    if not sets:
        return
    print(f"{'set':<22} {'parse':>7} {'check':>7} {'(prep)':>7} {'total':>7} | {'P parse':>7} {'P check':>7}"
          f" {'P total':>7} | {'check x':>7} {'total x':>7} {'cpu x':>6}  verdicts (ms; x = ours / Porcupine's)")
    for name, files in sets.items():
        op, oc, prep = (sum(getattr(ours[f], a) for f in files) for a in ("parse_ms", "check_ms", "prep_ms"))
        verdicts = f"{sum(ours[f].verdict == 'ok' for f in files)} ok/{len(files)}"
        line = f"{name:<22} {op:7.1f} {oc:7.1f} {prep:7.1f} {op + oc:7.1f}"
        if theirs is not None:
            tp = sum(theirs[f].parse_ms for f in files)
            tc = sum(theirs[f].check_ms for f in files)
            same = sum(ours[f].verdict == theirs[f].verdict for f in files)
            cpu = (sum(ours[f].parse_cpu_ms + ours[f].check_cpu_ms for f in files)
                   / sum(theirs[f].parse_cpu_ms + theirs[f].check_cpu_ms for f in files))
            line += f" | {tp:7.1f} {tc:7.1f} {tp + tc:7.1f} | {oc / tc:7.2f} {(op + oc) / (tp + tc):7.2f} {cpu:6.2f}"
            verdicts += f", {same}/{len(files)} match Porcupine"
        print(f"{line}  {verdicts}", flush=True)
        if len(files) > 1:
            med = statistics.median(ours[f].check_ms for f in files)
            theirs_med = "" if theirs is None else f", Porcupine's {statistics.median(theirs[f].check_ms for f in files):.3f} ms"
            print(f"{'':<22} median check per file: ours {med:.3f} ms{theirs_med}")
    if theirs is not None:
        report_totals(sets, ours, theirs)


def report_totals(sets: dict[str, list[Path]], ours: dict[Path, Timing], theirs: dict[Path, Timing]) -> None:
    """Print each family of sets (etcd, kv, gen: the first word of a set's name) in total, parse and
    check of every file summed, ours against Porcupine's: the issue's target is at most 1x on each."""
    families: dict[str, list[Path]] = {}
    for name, files in sets.items():
        families.setdefault(name.split()[0], []).extend(files)
    for family, files in families.items():
        mine = sum(ours[f].parse_ms + ours[f].check_ms for f in files)
        porcupine = sum(theirs[f].parse_ms + theirs[f].check_ms for f in files)
        cpu = (sum(ours[f].parse_cpu_ms + ours[f].check_cpu_ms for f in files)
               / sum(theirs[f].parse_cpu_ms + theirs[f].check_cpu_ms for f in files))
        print(f"{family} in total ({len(files)} files): ours {mine:.1f} ms, Porcupine's {porcupine:.1f} ms: "
              f"{mine / porcupine:.2f}x wall, {cpu:.2f}x CPU (target: at most 1x wall)")


def step_floor_ns(runs: int = 200_000) -> tuple[float, float]:
    """This interpreter's floor per search step on a kv partition, in nanoseconds of CPU (median of
    5 runs of ``runs`` steps): one call of the kv model's ``step`` (an append to a 100-character
    state) alone, and the least a search does per fresh configuration: that call, the cache
    insertion of the configuration reached, lifting the operation's two nodes out of their lists,
    a stack push, and the pop and unlift of backtracking."""
    kv = get_model("kv")
    step, inp = kv.step, kv.compile({"op": "append", "key": "k", "value": "x 1 2 y"}, None)[0]
    state = "x" * 100
    seen: set[tuple[int, int, str]] = set()
    stack: list[tuple] = []
    nxt, prv = list(range(1, 7)) + [0], [6] + list(range(6))  # one circular list of 7 nodes

    def calls() -> None:
        for _ in range(runs):
            step(state, inp, None)

    def fresh_steps() -> None:
        for k in range(runs):
            legal, new_state = step(state, inp, None)
            before = len(seen)
            seen.add((k, 0, new_state))
            if legal and len(seen) != before:
                for node in (1, 4):  # lift
                    a, b = prv[node], nxt[node]
                    nxt[a], prv[b] = b, a
                stack.append((1, 4, state, k, 0, 0, 1))
                call_node, ret_node, _, _, _, _, _ = stack.pop()
                for node in (ret_node, call_node):  # unlift
                    nxt[prv[node]], prv[nxt[node]] = node, node

    def per_step(fn: Callable[[], None]) -> float:
        samples = []
        for _ in range(5):
            seen.clear()
            t0 = time.process_time()
            fn()
            samples.append((time.process_time() - t0) / runs * 1e9)
        return statistics.median(samples)

    return per_step(calls), per_step(fresh_steps)


def report_steps(sets: dict[str, list[Path]], ours: dict[Path, Timing], theirs: dict[Path, Timing] | None,
                 binary: Path | None) -> None:
    """The interpreter limit: per kv and generated set, the model steps each checker takes and the
    CPU time of its check per model step, then this interpreter's floor per fresh search step
    (:func:`step_floor_ns`) against Porcupine's CPU time per model step on the linearizable sets
    (on an illegal one its partitions race to the first ILLEGAL, so its step count, taken in
    another run than its time, varies from run to run)."""
    kv_sets = {name: files for name, files in sets.items() if not name.startswith("etcd")}
    if not kv_sets:
        return
    files = [f for fs in kv_sets.values() for f in fs]
    theirs_steps = porcupine_steps(binary, files) if binary is not None and theirs is not None else {}
    print("model steps (x 1000) and check CPU time per model step (ns):")
    p_cpu_ms = p_total_steps = 0.0  # over the linearizable sets
    for name, fs in kv_sets.items():
        search_steps, model_steps = (sum(v) for v in zip(*(our_steps(f) for f in fs)))
        ours_ns = sum(ours[f].check_cpu_ms for f in fs) * 1e6 / max(model_steps, 1)
        line = f"  {name:<20} ours {model_steps / 1e3:7.1f} ({search_steps / 1e3:.1f} search steps), {ours_ns:6.0f} ns each"
        if theirs is not None and theirs_steps:
            p_steps = sum(theirs_steps.get(f, 0) for f in fs)
            ns = sum(theirs[f].check_cpu_ms for f in fs) * 1e6 / max(p_steps, 1)
            line += (f"; Porcupine's {p_steps / 1e3:7.1f}, {ns:6.0f} ns each"
                     f" (steps x {model_steps / max(p_steps, 1):.2f}, ns x {ours_ns / ns:.1f})")
            if all(theirs[f].verdict == "ok" for f in fs):
                p_cpu_ms += sum(theirs[f].check_cpu_ms for f in fs)
                p_total_steps += p_steps
            else:
                line += " (illegal: Porcupine's count varies)"
        print(line)
    call_ns, fresh_ns = step_floor_ns()
    print(f"interpreter limit: one kv model step costs {call_ns:.0f} ns of CPU as a Python call here, and a fresh"
          f" search step at least {fresh_ns:.0f} ns (the step, its cache insertion, a push and a pop, list links)",
          end="")
    if p_total_steps:
        p_ns = p_cpu_ms * 1e6 / p_total_steps
        print(f"; Porcupine's whole search costs {p_ns:.0f} ns of CPU per model step (all its linearizable sets"
              f" together): at equal step counts Python is at least {fresh_ns / p_ns:.1f}x slower, so only"
              " taking fewer steps can bring a set under 1x")
    else:
        print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--porcupine", type=Path,
                        default=Path(os.environ.get("PORCUPINE_DIR", ROOT.parent / "shared" / "data" / "porcupine")))
    parser.add_argument("--repeat", type=int, default=3, help="rounds, each timing every file once (medians)")
    parser.add_argument("--no-go", action="store_true", help="do not time Porcupine even when go is available")
    parser.add_argument("--only", default="etcd,kv,gen,tiny", help="comma-separated: etcd, kv, gen, tiny")
    parser.add_argument("--gen-ops", type=int, default=20000)
    parser.add_argument("--gen-clients", type=int, default=100)
    parser.add_argument("--gen-keys", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tiny-runs", type=int, default=2000)
    args = parser.parse_args(argv)
    args.only = set(args.only.split(","))
    if args.only - {"tiny"} and not (args.porcupine / "test_data").is_dir():
        sys.exit(f"Porcupine's folder not found at {args.porcupine} (pass --porcupine or set PORCUPINE_DIR); "
                 "run with --only gen,tiny to skip its files")
    with tempfile.TemporaryDirectory() as tmp:
        sets = file_sets(args.porcupine, Path(tmp), args)
        files = [f for fs in sets.values() for f in fs]
        binary = None if args.no_go or not files else build_harness(args.porcupine, Path(tmp))
        if files and binary is None and not args.no_go:
            print("(go not found: Porcupine not timed; `apt-get install -y golang-go` to compare)")
        ours, theirs = time_interleaved(files, binary, args.repeat)
        report_sets(sets, ours, theirs)
        report_steps(sets, ours, theirs, binary)
    if "tiny" in args.only:
        full, bare = tiny_micro(args.tiny_runs)
        print(f"tiny check(): {full:.1f} us per call (median); the search alone: {bare:.1f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
