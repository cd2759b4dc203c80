"""The linearizability checker against Porcupine (issue 32, item 4), side by side on one machine.

Sets: Porcupine's 103 Jepsen etcd logs (etcd_095 is empty) (cas-register model), each of its 6 kv logs (kv model), and
generated kv histories in Porcupine's format (``--gen-ops`` operations, ``--gen-clients`` clients,
``--gen-keys`` keys; one linearizable, one with a corrupted read). For each set it prints our time
(parsing, ``check()`` with one job, and their total; medians of ``--repeat`` per file, summed over
the set), Porcupine's (its own ``parseJepsenLog``/``parseKvLog`` and ``CheckEventsTimeout``, timed
by a small Go harness written into a temporary copy of Porcupine's folder, when ``go`` is on PATH),
and the ratios (ours / Porcupine's). Verdicts are compared with Porcupine's too.

Then the tiny-check microbenchmark: median microseconds per ``check()`` on 2-4 operation histories
(the explorer calls it once per schedule), side by side with the search alone.

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
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from checker.history import History, Operation, parse_history  # noqa: E402
from checker.linearizability import check  # noqa: E402
from checker.linearizability.search import search  # noqa: E402
from checker.models import get_model  # noqa: E402

GO_HARNESS = r'''package porcupine

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"
)

func packratMedian(n int, f func()) float64 {
	var ts []float64
	for i := 0; i < n; i++ {
		t0 := time.Now()
		f()
		ts = append(ts, float64(time.Since(t0).Nanoseconds())/1e6)
	}
	sort.Float64s(ts)
	return ts[len(ts)/2]
}

// TestPackratTiming prints "TIMING file parse_ms check_ms ok|illegal" for each file named in
// $PACKRAT_FILES (newline-separated; .txt: kv logs, others: Jepsen etcd logs).
func TestPackratTiming(t *testing.T) {
	var repeat int
	fmt.Sscanf(os.Getenv("PACKRAT_REPEAT"), "%d", &repeat)
	for _, f := range strings.Split(os.Getenv("PACKRAT_FILES"), "\n") {
		if f == "" {
			continue
		}
		isKv := strings.HasSuffix(f, ".txt")
		var events []Event
		parse := packratMedian(repeat, func() {
			if isKv {
				events = parseKvLog(f)
			} else {
				events = parseJepsenLog(f)
			}
		})
		model := etcdModel
		if isKv {
			model = kvModel
		}
		var res CheckResult
		chk := packratMedian(repeat, func() { res = CheckEventsTimeout(model, events, 0) })
		verdict := "illegal"
		if res == Ok {
			verdict = "ok"
		}
		fmt.Printf("TIMING %s %.4f %.4f %s\n", f, parse, chk, verdict)
	}
}
'''


@dataclass(frozen=True)
class Timing:
    """One file's median times in milliseconds and its verdict (``ok``/``illegal``/...)."""

    parse_ms: float
    check_ms: float
    verdict: str


def median_ms(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """Median wall time of ``fn()`` over ``repeat`` runs (ms), and its last value."""
    times, value = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), value


def parse_file(text: str, fmt: str) -> History:
    """Parse like the CLI does with ``--format``; an empty log (etcd_095: the cluster never
    started) is an empty history."""
    return parse_history(text, fmt)


def time_ours(path: Path, repeat: int) -> Timing:
    """Our parse and check times for one file (cas-register for .log files, kv for .txt)."""
    fmt, model = ("porcupine-kv", "kv") if path.suffix == ".txt" else ("jepsen", "cas-register")
    text = path.read_text()
    parse_ms, history = median_ms(lambda: parse_file(text, fmt), repeat)
    assert isinstance(history, History)
    check_ms, result = median_ms(lambda: check(history, model), repeat)
    return Timing(parse_ms, check_ms, result.result.value)  # type: ignore[attr-defined]


def time_porcupine(porcupine: Path, files: list[Path], repeat: int) -> dict[Path, Timing] | None:
    """Porcupine's times per file through the Go harness, or None when ``go`` is not available."""
    go = shutil.which("go")
    if go is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "porcupine"
        shutil.copytree(porcupine, work, ignore=shutil.ignore_patterns("test_data"))
        (work / "packrat_timing_test.go").write_text(GO_HARNESS)
        env = dict(os.environ, PACKRAT_FILES="\n".join(str(f) for f in files), PACKRAT_REPEAT=str(repeat),
                   GOFLAGS="-mod=mod", GOCACHE=str(Path(tmp) / "cache"))
        proc = subprocess.run([go, "test", "-count=1", "-v", "-run", "TestPackratTiming", "."], cwd=work,
                              env=env, capture_output=True, text=True, timeout=3600)
    out: dict[Path, Timing] = {}
    for m in re.finditer(r"^TIMING (\S+) (\S+) (\S+) (\S+)$", proc.stdout, re.MULTILINE):
        out[Path(m.group(1))] = Timing(float(m.group(2)), float(m.group(3)), m.group(4))
    if len(out) != len(files):
        sys.exit(f"the Go harness timed {len(out)} of {len(files)} files:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return out


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
    """Print one line per set: ours (parse, check, total), Porcupine's, the ratios, verdicts."""
    if not sets:
        return
    print(f"{'set':<22} {'parse':>8} {'check':>8} {'total':>8} | {'P parse':>8} {'P check':>8} {'P total':>8}"
          f" | {'check x':>7} {'total x':>7}  verdicts (ms; x = ours / Porcupine's)")
    for name, files in sets.items():
        op = sum(ours[f].parse_ms for f in files)
        oc = sum(ours[f].check_ms for f in files)
        verdicts = f"{sum(ours[f].verdict == 'ok' for f in files)} ok/{len(files)}"
        line = f"{name:<22} {op:8.1f} {oc:8.1f} {op + oc:8.1f}"
        if theirs is not None:
            tp = sum(theirs[f].parse_ms for f in files)
            tc = sum(theirs[f].check_ms for f in files)
            same = sum(ours[f].verdict == theirs[f].verdict for f in files)
            line += f" | {tp:8.1f} {tc:8.1f} {tp + tc:8.1f} | {oc / tc:7.2f} {(op + oc) / (tp + tc):7.2f}"
            verdicts += f", {same}/{len(files)} match Porcupine"
        print(f"{line}  {verdicts}", flush=True)
        if len(files) > 1:
            med = statistics.median(ours[f].check_ms for f in files)
            theirs_med = "" if theirs is None else f", Porcupine's {statistics.median(theirs[f].check_ms for f in files):.3f} ms"
            print(f"{'':<22} median check per file: ours {med:.3f} ms{theirs_med}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--porcupine", type=Path,
                        default=Path(os.environ.get("PORCUPINE_DIR", ROOT.parent / "shared" / "data" / "porcupine")))
    parser.add_argument("--repeat", type=int, default=3, help="runs per file (medians)")
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
    with tempfile.TemporaryDirectory() as gen_dir:
        sets = file_sets(args.porcupine, Path(gen_dir), args)
        files = [f for fs in sets.values() for f in fs]
        ours = {f: time_ours(f, args.repeat) for f in files}
        theirs = None if args.no_go or not files else time_porcupine(args.porcupine, files, args.repeat)
        if files and theirs is None and not args.no_go:
            print("(go not found: Porcupine not timed; `apt-get install -y golang-go` to compare)")
        report_sets(sets, ours, theirs)
    if "tiny" in args.only:
        full, bare = tiny_micro(args.tiny_runs)
        print(f"tiny check(): {full:.1f} us per call (median); the search alone: {bare:.1f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
