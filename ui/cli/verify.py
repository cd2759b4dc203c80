"""`packrat verify`: prove with Z3 that a plan is optimal, or show a better allocation.

Exit codes: 0 OPTIMAL, 1 NOT_OPTIMAL (a better allocation is printed), 2 bad input (a
plan file that is not a valid plan for the batch and cores included), 3 UNKNOWN (the
time limit ran out; never reported as optimal).
"""

from __future__ import annotations

import typer

from ui.cli.common import EXIT_NEGATIVE, EXIT_OK, EXIT_UNKNOWN, BadInput, corun_fields, emit_json, load_profile_arg, profile_line

DEFAULT_TIMEOUT_S = 60.0


def make_options(
    *,
    allow_idle: bool = False,
    homogeneous: bool = False,
    min_batch: int = 1,
    max_instances: int | None = None,
    cores_per_socket: int | None = None,
    statistic: str | None = None,
):
    """OptimizerOptions from CLI flags; BadInput naming the bad value."""
    from packrat_sim.optimizer import OptimizerError, OptimizerOptions

    try:
        return OptimizerOptions(
            exact_cores=not allow_idle,
            homogeneous=homogeneous,
            min_batch=min_batch,
            max_instances=max_instances,
            cores_per_socket=cores_per_socket,
            statistic=statistic,
        )
    except OptimizerError as exc:
        message = str(exc)
        for name in ("max_instances", "cores_per_socket", "min_batch"):
            message = message.replace(name, "--" + name.replace("_", "-"))
        raise BadInput(message) from None


def certify_plan(profile, batch: int, cores: int, plan, options, timeout_s: float, what: str = "the plan",
                 interference: bool = False):
    """``checker.allocation.certify`` (or ``certify_under_interference``) with every input
    error turned into BadInput (``what`` names the plan, e.g. ``plan file 'p.json'``)."""
    from checker.allocation import CertifyError, certify_under_interference, certify_with_dispatch

    try:
        if interference:
            return certify_under_interference(profile, batch, cores, plan, options, timeout_s=timeout_s)
        # the predictor's objective: measured dispatch cost + slowest instance (= certify without dispatch data)
        return certify_with_dispatch(profile, batch, cores, plan, options, timeout_s=timeout_s)
    except CertifyError as exc:
        raise BadInput(f"{what} is not valid for batch {batch} on {cores} cores: {exc}") from None


def exit_code(certificate) -> int:
    """0 optimal, 1 not optimal, 3 unknown."""
    from checker.allocation import Result

    return {Result.OPTIMAL: EXIT_OK, Result.NOT_OPTIMAL: EXIT_NEGATIVE}.get(certificate.result, EXIT_UNKNOWN)


def constraints_text(cores: int, options) -> str:
    """E.g. ``exactly 16 cores, at most 4 instances, sockets of [8, 8] cores``."""
    rule = "exactly" if options.exact_cores else "at most"
    return ", ".join([f"{rule} {cores} cores", *options.limits(cores, socket_note=" (no instance spans two)")])


def certificate_lines(cert, indent: str = "") -> list[str]:
    """Human-readable verdict, bound, witness and solving time of a Certificate."""
    from checker.allocation import Result

    s = cert.stats
    lines = []
    if cert.result is Result.OPTIMAL:
        who = "Z3 proved" if not s.bounded else (
            "the density bound refuted every query, Z3 was not needed: it is proved" if not s.queries else
            f"Z3 and the density bound ({s.bounded} of {s.bounded + s.queries} queries) proved")
        lines.append(
            f"result    OPTIMAL: {who} that no allocation of the profiled shapes has latency < {cert.bound_ms:.4f} ms"
        )
        lines.append(f"bound     latency < {cert.bound_ms:.6f} ms refuted (unsatisfiable)")
    elif cert.result is Result.NOT_OPTIMAL:
        w = cert.witness
        lines.append(
            f"result    NOT_OPTIMAL: Z3 found an allocation with latency {w.predicted_ms:.4f} ms < {cert.bound_ms:.4f} ms"
        )
        lines.append(
            f"witness   {w.describe():<30} {w.predicted_ms:10.2f} ms   ({cert.bound_ms / w.predicted_ms:.2f}x faster than the plan)"
        )
        lines.append(f"bound     latency < {cert.bound_ms:.6f} ms is satisfiable: the plan is beaten")
    else:
        lines.append(
            f"result    UNKNOWN: Z3 did not decide within the {cert.timeout_s:g} s limit ({cert.reason}); the plan is NOT certified"
        )
        lines.append(f"bound     latency < {cert.bound_ms:.6f} ms neither refuted nor satisfied")
    refuted = f", {s.bounded} queries refuted by the density bound without Z3" if s.bounded else ""
    lines.append(
        f"solving   {cert.elapsed_s:.3f} s   (Z3: {s.queries} queries, {s.variables} integer variables, "
        f"{s.constraints} constraints, {s.shapes} of {s.usable_shapes} usable shapes below the bound, "
        f"{s.sockets} socket(s){refuted})"
    )
    return [indent + line for line in lines]


def verify_report(profile, batch: int, cores: int, options, plan_source: str, cert, co=None) -> dict:
    """The JSON object of `packrat verify --json` (``co``: the ``packrat_sim.predictor.CoRun``
    the plan was certified under; default: the profile's, calibrated when it has a model)."""
    from packrat_sim.predictor import corun

    co = co or corun(profile)
    out = cert.to_json()
    out.update(corun_fields(co, co.notes(_priced_plans(cert))))
    out.update(
        {
            "profile": profile.model,
            "synthetic": profile.synthetic,
            "batch": batch,
            "cores": cores,
            "plan_source": plan_source,
            "options": {
                "exact_cores": options.exact_cores,
                "homogeneous": options.homogeneous,
                "min_batch": options.min_batch,
                "max_instances": options.max_instances,
                "cores_per_socket": options.cores_per_socket,
                "statistic": options.statistic or profile.statistic,
            },
        }
    )
    return out


def load_plan_file(path: str):
    """The plan in file ``path`` (packrat.plan/1); BadInput naming the file when it is not one.
    Read through packrat_sim.inputs: a regular file only (no device or FIFO), bounded, UTF-8
    text, strict JSON (no duplicate key, NaN, integer of thousands of digits, deep nesting or
    lone surrogate)."""
    from packrat_sim import inputs
    from packrat_sim.plan import Plan, PlanError

    text = inputs.read_text(path, "plan file", error=BadInput)
    try:
        return Plan.from_json(inputs.loads_json(text, "the plan JSON", error=PlanError))
    except PlanError as exc:
        raise BadInput(f"plan file {path!r}: {exc}") from None


def register(app: typer.Typer) -> None:
    @app.command("verify")
    def verify_cmd(
        profile: str = typer.Option(..., "--profile", help="Profile JSON file, or builtin:NAME (cnn-16, cnn-64, transformer-16, transformer-64)."),
        batch: int = typer.Option(..., "--batch", help="Batch size B (inputs)."),
        cores: int = typer.Option(..., "--cores", help="Cores T available."),
        timeout: float = typer.Option(DEFAULT_TIMEOUT_S, "--timeout", help="Time limit for Z3, seconds; when it runs out the answer is UNKNOWN (exit 3)."),
        plan_file: str | None = typer.Option(None, "--plan", help="Certify this plan file (packrat.plan/1) instead of the optimizer's plan."),
        exact_cores: bool = typer.Option(False, "--exact-cores", help="Use exactly T threads in total (Packrat's rule); by default allocations may leave cores idle."),
        allow_idle: bool = typer.Option(False, "--allow-idle", hidden=True, help="Accepted for compatibility: idle cores are allowed by default."),
        candidates: str = typer.Option("profiled", "--candidates", help="Instance shapes: profiled (measured cells only) or interpolated (every threads x sub-batch), as in `packrat plan`."),
        homogeneous: bool = typer.Option(False, "--homogeneous", help="Only k identical instances."),
        max_instances: int | None = typer.Option(None, "--max-instances", help="At most N instances in total."),
        min_batch: int = typer.Option(1, "--min-batch", help="Smallest sub-batch an instance may get."),
        cores_per_socket: int | None = typer.Option(
            None, "--cores-per-socket",
            help="The T cores are sockets of N cores (the last one holds T mod N if N does not divide T); no instance spans two sockets.",
        ),
        statistic: str | None = typer.Option(None, "--statistic", help="Cell statistic used as latency (default: the profile's, mean)."),
        isolated: bool = typer.Option(False, "--isolated", help="Ignore the profile's co-run model: certify the isolated objective (by default a profile with a co-run model is certified under it, as `packrat plan` plans)."),
        interference: bool = typer.Option(False, "--interference", help="Certify under the profile's co-run model (the default when it has one; exit 2 when it has none)."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object and nothing else."),
    ) -> None:
        """Prove with Z3 that the plan (the optimizer's, or --plan FILE) is optimal: OPTIMAL (exit 0),
        NOT_OPTIMAL with a better allocation (exit 1), or UNKNOWN when the time limit ran out (exit 3)."""
        from packrat_sim import validate
        from packrat_sim.predictor import PredictorError, candidate_profile, check_candidates, corun

        if exact_cores and allow_idle:
            raise BadInput("--exact-cores and --allow-idle contradict each other; give one")
        if isolated and interference:
            raise BadInput("--isolated and --interference contradict each other; give one")
        try:
            check_candidates(candidates)
        except PredictorError as exc:
            raise BadInput(str(exc).replace("candidate set", "--candidates")) from None
        prof = load_profile_arg(profile)
        validate.positive_int(batch, "--batch", error=BadInput)
        validate.positive_int(cores, "--cores", error=BadInput)
        validate.finite(timeout, "--timeout", above=0, error=BadInput, expected="a number of seconds > 0")
        options = make_options(
            allow_idle=not exact_cores, homogeneous=homogeneous, min_batch=min_batch,
            max_instances=max_instances, cores_per_socket=cores_per_socket, statistic=statistic,
        )
        # library errors (PackratError, naming the value) reach the entry point: exit 2
        if statistic is not None:
            prof.with_statistic(statistic)
        if interference and prof.interference is None:
            raise BadInput(f"--interference: the profile of {prof.model!r} has no interference model")
        co = corun(prof, isolated)
        prof = candidate_profile(prof, cores, batch, candidates)
        if plan_file is not None:
            plan, source = load_plan_file(plan_file), plan_file
        else:
            plan, source = optimizer_plan(prof, batch, cores, options, co.calibrated)
        what = f"plan file {plan_file!r}" if plan_file is not None else "the optimizer's plan"
        cert = certify_plan(prof, batch, cores, plan, options, timeout, what, interference=co.calibrated)
        if as_json:
            emit_json(verify_report(prof, batch, cores, options, source, cert, co))
        else:
            typer.echo("\n".join(verify_lines(prof, batch, cores, options, source, cert, co)))
        raise typer.Exit(exit_code(cert))


def optimizer_plan(profile, batch: int, cores: int, options, calibrated: bool):
    """(the plan `packrat plan` picks, its source label): the same planner and predictor
    (dispatch + slowest instance, times its co-run slowdown when ``calibrated``), the
    objective Z3 certifies."""
    from packrat_sim.predictor import Predictor, best_plan

    predictor = Predictor(profile, options.statistic, calibrated)
    plan = best_plan(predictor, batch, cores, options)
    return plan, "optimizer under the co-run model" if calibrated else "optimizer"


def _priced_plans(cert) -> list:
    """The plans a verdict prices: the certified plan and Z3's witness, if any."""
    return [cert.plan, cert.witness]


def verify_lines(profile, batch: int, cores: int, options, source: str, cert, co) -> list[str]:
    """The text output of `packrat verify` (``co``: the ``packrat_sim.predictor.CoRun``)."""
    objective = " x co-run slowdown (co-run model)" if co.calibrated else ""
    lines = [
        profile_line(profile),
        f"problem   batch {batch} on {constraints_text(cores, options)}, latency = "
        f"{options.statistic or profile.statistic} of each cell{objective}",
        f"co-run    {co.describe()}",
        f"plan      {cert.plan.describe():<30} {cert.latency_ms:10.2f} ms   (from {source}; count x threads x sub-batch)",
        *certificate_lines(cert),
    ]
    if profile.synthetic:
        lines.append("note      SYNTHETIC profile: latencies come from a formula, not a measurement")
    return lines + [f"note      {n}" for n in co.notes(_priced_plans(cert))]
