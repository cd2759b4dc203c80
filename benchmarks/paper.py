"""Packrat's headline table on this machine: speedup of the optimizer's plan over the fat instance.

For each model (default resnet50, bert-base, gpt2: built on CPU with random weights, no
downloads) and batch size (default 1, 2, 4, ..., 64), on T cores (default: every allowed CPU):

1. profile the model through the runner's own pool path (``real_runner.profiling``;
   threads ``--threads``, default the powers of two up to T and T itself; batches the
   powers of two up to the largest batch). The profile is written to
   ``--out-dir/MODEL.json`` after every cell, so an interrupted run resumes where it stopped;
2. plan each batch with the one predictor (``packrat_sim.predictor``: dispatch cost +
   slowest instance, idle cores allowed);
3. run the plan and the fat instance (1 instance x T threads, the usual deployment) on the
   same inputs, interleaved (``real_runner.executor.compare_with_fat``), and report the
   measured speedup (fat median / plan median) beside the predicted one.

Prints a Markdown table (paste it into docs/results.md) and writes it, with the raw
figures as JSON, to ``--out-dir``. ``--time-budget`` (seconds, whole run) stops profiling
and measuring when spent; rows not reached are listed as skipped, never invented.

Dependencies: python3, torch, transformers, numpy and this repository on PYTHONPATH (no
simpy, z3 or streamlit is imported on this path).

    PYTHONPATH=. python3 benchmarks/paper.py [--models resnet50,bert-base,gpt2] [--batches 1-64]
        [--cores T] [--threads 1,2,4,8,16] [--iterations 10] [--repeats 3] [--time-budget S]
        [--interference] [--out-dir paper-results]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DEFAULT_MODELS = ("resnet50", "bert-base", "gpt2")
DEFAULT_BATCHES = (1, 2, 4, 8, 16, 32, 64)


class OutOfTime(Exception):
    """The --time-budget ran out."""


def parse_list(text: str, what: str) -> list[int]:
    """``1,2,4`` or ``1-64`` (the powers of two in the range) -> sorted distinct positive ints
    (:func:`packrat_sim.spec.parse_int_list`); exits naming ``what`` otherwise."""
    from packrat_sim.errors import PackratError
    from packrat_sim.spec import parse_int_list

    try:
        return parse_int_list(text, what, sort_unique=True, powers_of_two=True)
    except PackratError as exc:
        raise SystemExit(f"paper: {exc}") from None


def default_threads(cores: int) -> list[int]:
    """The powers of two below ``cores``, and ``cores`` itself."""
    return sorted({1 << i for i in range(cores.bit_length()) if (1 << i) <= cores} | {cores})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS))
    ap.add_argument("--batches", default=",".join(map(str, DEFAULT_BATCHES)))
    ap.add_argument("--cores", type=int, default=None, help="cores T (default: every allowed CPU)")
    ap.add_argument("--threads", default=None, help="profiled thread counts (default: powers of two up to T, and T)")
    ap.add_argument("--iterations", type=int, default=10, help="interleaved batches per plan when measuring")
    ap.add_argument("--repeats", type=int, default=3, help="samples per profile cell (at least)")
    ap.add_argument("--time-budget", type=float, default=None, help="seconds for the whole run (default: none)")
    ap.add_argument("--interference", action="store_true", help="also measure the co-run sweep while profiling")
    ap.add_argument("--out-dir", default="paper-results")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from packrat_sim.optimizer import OptimizerError, OptimizerOptions
    from packrat_sim.plan import fat
    from packrat_sim.predictor import Predictor, best_plan
    from real_runner import topology as topo_mod
    from real_runner.executor import compare_with_fat
    from real_runner.profiling import measure_profile, powers_of_two_upto

    start = time.monotonic()
    deadline = None if args.time_budget is None else start + args.time_budget

    def check_time() -> None:
        if deadline is not None and time.monotonic() > deadline:
            raise OutOfTime

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    batches = parse_list(args.batches, "--batches")
    topo = topo_mod.detect()
    T = args.cores or topo.logical
    if not 1 <= T <= topo.logical:
        raise SystemExit(f"paper: --cores must be in 1..{topo.logical} here, got {T}")
    threads = parse_list(args.threads, "--threads") if args.threads else default_threads(T)
    if max(threads) > T:
        raise SystemExit(f"paper: --threads go beyond --cores {T}")
    os.makedirs(args.out_dir, exist_ok=True)
    print(f"paper: {', '.join(models)} on {T} cores ({topo.describe()}); batches {batches}; "
          f"threads {threads}; OpenMP wait policy {topo_mod.omp_policy()}", flush=True)

    rows: list[dict] = []
    skipped: list[str] = []
    for model in models:
        out = os.path.join(args.out_dir, f"{model}.json")

        def on_cell(cell, index, total, model=model):
            print(f"  {model}: cell t={cell.threads} b={cell.batch} median {cell.median_ms:.2f} ms "
                  f"({index + 1}/{total})", flush=True)
            check_time()

        try:
            check_time()
            profile = measure_profile(model, threads, powers_of_two_upto(max(batches)), args.repeats,
                                      out=out, interference=args.interference, topology=topo, seed=args.seed,
                                      min_seconds=0.0, max_samples=args.repeats, on_cell=on_cell).profile
        except OutOfTime:
            skipped.append(f"{model}: profile incomplete when the time budget ran out (rerun to resume from {out})")
            continue
        predictor = Predictor(profile)
        for B in batches:
            try:
                check_time()
                plan = best_plan(predictor, B, T, OptimizerOptions(exact_cores=False))
                fat_pred = predictor.plan_ms(fat(B, T))
                comp = compare_with_fat(model, plan, args.iterations, cores=T, topology=topo, seed=args.seed)
            except OutOfTime:
                skipped.append(f"{model} batch {B}: not measured (time budget)")
                continue
            except OptimizerError as exc:
                skipped.append(f"{model} batch {B}: no plan ({exc})")
                continue
            row = {
                "model": model, "batch": B, "cores": T, "plan": plan.describe(),
                "fat_ms": comp.fat.median_ms, "plan_ms": comp.plan.median_ms, "speedup": comp.speedup,
                "predicted_plan_ms": plan.predicted_ms, "predicted_fat_ms": fat_pred,
                "predicted_speedup": None if fat_pred is None else fat_pred / plan.predicted_ms,
                "outputs_match": comp.outputs_match,
            }
            rows.append(row)
            print(f"  {model} B={B}: {row['plan']}  fat {row['fat_ms']:.2f} ms  plan {row['plan_ms']:.2f} ms  "
                  f"speedup x{row['speedup']:.2f}", flush=True)

    table = to_markdown(rows, skipped, T, topo.describe(), topo_mod.omp_policy())
    print()
    print(table)
    with open(os.path.join(args.out_dir, "paper.md"), "w", encoding="utf-8") as fh:
        fh.write(table + "\n")
    with open(os.path.join(args.out_dir, "paper.json"), "w", encoding="utf-8") as fh:
        json.dump({"cores": T, "topology": topo.describe(), "rows": rows, "skipped": skipped,
                   "elapsed_s": time.monotonic() - start}, fh, indent=1)
    return 0


def to_markdown(rows: list[dict], skipped: list[str], cores: int, topology: str, policy: str) -> str:
    """The speedup-over-fat table (measured, with the predicted speedup beside it)."""
    lines = [
        f"Packrat speedup over the fat instance (1 x {cores} threads) on {topology}; "
        f"medians of interleaved runs; OpenMP wait policy {policy}.",
        "",
        "| model | batch | Packrat plan (count x threads x sub-batch) | fat ms | Packrat ms | speedup | predicted speedup |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        pred = "-" if r["predicted_speedup"] is None else f"{r['predicted_speedup']:.2f}x"
        lines.append(f"| {r['model']} | {r['batch']} | {r['plan']} | {r['fat_ms']:.2f} | {r['plan_ms']:.2f} | "
                     f"{r['speedup']:.2f}x | {pred} |")
    if skipped:
        lines += ["", "Not measured:"] + [f"- {s}" for s in skipped]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
