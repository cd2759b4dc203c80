"""`packrat predict`: the predicted latency of a plan the user writes, isolated and calibrated
side by side (issue 27).

    packrat predict --profile P (--plan "4x4x16+2x2x8" | --plan-file F) [--cores T] [--json]

Thin over ``packrat_sim.plan.parse_compact`` and ``packrat_sim.predictor.price_plan``. Bad
plans (malformed text, more threads than cores, a cell the profile lacks) exit 2 naming
the value.
"""

from __future__ import annotations

import typer

from ui.cli.common import BadInput, emit_json, load_profile_arg, profile_line

PLAN_HELP = ("The plan in Packrat's compact form: COUNT x THREADS x SUB-BATCH groups joined by +, "
             "e.g. '4x4x16+2x2x8' (the batch is the sum of the sub-batches).")
CORES_HELP = ("Cores T the plan may use (default: the logical cores of the machine the profile describes, "
              "or its largest profiled thread count when unknown; a plan file's own cores).")


def default_cores(profile) -> int:
    """The cores a written plan may use by default: the profile machine's logical cores, or
    its largest profiled thread count when the machine is unknown."""
    return profile.machine.logical_cores or profile.max_threads


def read_plan(profile, text: str | None, path: str | None, cores: int | None):
    """The plan of ``--plan TEXT`` or ``--plan-file PATH`` on ``cores`` cores; BadInput naming
    the option and the bad value (a malformed group, too many threads for the cores)."""
    from packrat_sim import validate
    from packrat_sim.plan import Plan, PlanError, parse_compact

    if (text is None) == (path is None):
        raise BadInput("give exactly one of --plan TEXT (e.g. '4x4x16+2x2x8') or --plan-file FILE")
    if cores is not None:
        validate.positive_int(cores, "--cores", error=BadInput)
    try:
        if text is not None:
            return parse_compact(text, cores if cores is not None else default_cores(profile))
        from ui.cli.verify import load_plan_file

        plan = load_plan_file(path or "")
        return plan if cores is None else Plan(plan.instances, plan.batch, cores)
    except PlanError as exc:
        raise BadInput(f"{'--plan' if text is not None else f'--plan-file {path!r}'}: {exc}") from None


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def format_price(price, profile) -> str:
    """Human-readable form of a ``packrat_sim.predictor.PlanPrice``."""
    plan = price.plan
    lines = [
        profile_line(profile),
        f"plan      {plan.describe()}   batch {plan.batch}, {plan.threads_used} of {plan.cores} cores busy "
        "(count x threads x sub-batch)",
        f"co-run    {price.corun.describe()}",
        "",
        f"{'group':<22} {'isolated ms':>12} {'slowdown':>9} {'calibrated ms':>14}",
    ]
    for g in price.groups:
        slow = "-" if g.calibrated_ms is None else f"{g.slowdown:.3f}x"
        lines.append(f"{f'{g.count} x {g.threads}t x {g.batch}':<22} {_ms(g.isolated_ms):>12} {slow:>9} "
                     f"{_ms(g.calibrated_ms):>14}")
    if price.has_dispatch:
        lines.append(f"{'dispatch (measured)':<22} {_ms(price.dispatch_ms):>12} {'':>9} "
                     f"{_ms(price.dispatch_ms if price.calibrated_ms is not None else None):>14}")
    lines.append(f"{'batch':<22} {_ms(price.isolated_ms):>12} {'':>9} {_ms(price.calibrated_ms):>14}"
                 "   (dispatch + slowest instance)")
    if profile.synthetic:
        lines.append("note      SYNTHETIC profile: figures come from a formula, not a measurement")
    lines += [f"note      {n}" for n in price.notes()]
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    @app.command("predict")
    def predict_cmd(
        profile: str = typer.Option(..., "--profile", help="Profile JSON file, or builtin:NAME (e.g. cnn-16, cnn-16+interference)."),
        plan: str | None = typer.Option(None, "--plan", help=PLAN_HELP),
        plan_file: str | None = typer.Option(None, "--plan-file", help="A plan file (packrat.plan/1 JSON) instead of --plan."),
        cores: int | None = typer.Option(None, "--cores", help=CORES_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object and nothing else."),
    ) -> None:
        """Predict the latency of a plan you write: per instance group and for the batch, isolated
        (the profile's cells) and calibrated (times the co-run slowdown, when the profile has a
        co-run model) side by side, with the measured dispatch cost where the profile has one."""
        from packrat_sim.predictor import price_plan

        prof = load_profile_arg(profile)
        the_plan = read_plan(prof, plan, plan_file, cores)
        price = price_plan(prof, the_plan)  # PredictorError names a missing cell: exit 2
        if as_json:
            emit_json(dict(price.to_json(), profile=prof.model, synthetic=prof.synthetic))
        else:
            typer.echo(format_price(price, prof))
