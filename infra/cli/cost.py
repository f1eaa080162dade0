"""cost (estimate, diff) and tco: what the environments cost a month, what a change costs, and five years."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from infra.cli.options import ENV_DIR, EnvDirOpt, FormatOpt, OutdirOpt, OutputOpt, outdir_or_default, plan_specs
from infra.cli.output import Format, emit, out, say, show
from infra.errors import EXIT_FINDINGS
from infra.tables import Table


class DefaultToEstimate(TyperGroup):
    """``infra cost [ENV…]`` is ``infra cost estimate [ENV…]``: a first argument that names no
    sub-command belongs to ``estimate`` (an environment named ``diff`` is ``infra cost estimate diff``)."""

    default = "estimate"

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # typer's vendored click.Context
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names):
            args = [self.default, *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=DefaultToEstimate,
    no_args_is_help=False,
    help="Monthly cost per environment, offline (`estimate`, the default), the cost of a change (`diff`), and `refresh` of the price catalog from the providers' price APIs.",
)


@app.command()
def estimate(
    envs: Annotated[list[str] | None, typer.Argument(help="Environments to price (default: all).", show_default=False)] = None,
    outdir: OutdirOpt = None,
    env_dir: EnvDirOpt = ENV_DIR,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
    plan: Annotated[
        list[str] | None, typer.Option("--plan", help="ENV=PLAN.json: price ENV from `terraform show -json` output.", show_default=False)
    ] = None,
) -> None:
    """Monthly cost per environment from the synthesized stacks; exit 1 when an estimate crosses its budget."""
    from infra.cost import report as cost_report
    from infra.cost.estimate import estimate as run_estimate

    result = run_estimate(outdir_or_default(outdir), env_dir, envs or None, plans=plan_specs(plan))
    if fmt is Format.table and output is None:
        show(*cost_report.tables(result))
    else:
        emit(cost_report.to_json(result) if fmt is Format.json else cost_report.markdown(result), output)
    stale = cost_report.stale_text(result)
    if stale:
        say(stale.removeprefix("⏳ "), prefix="stale prices:", prefix_style="yellow")
    for env_name, scope, est, budget in result.over_budget:
        what = "with every pool at its maximum" if scope == "ceiling" else "estimated"
        say(f"{env_name} {scope}: {est:,.2f} USD/month {what}, budget {budget:,.2f}", prefix="over budget:", prefix_style="red")
    if result.over_budget:
        raise typer.Exit(EXIT_FINDINGS)
    say(
        f"cost: {result.total():,.2f} USD/month over {len(result.envs)} environment(s), within budget; "
        f"ceiling {result.ceiling():,.2f} with every pool at its maximum"
    )


@app.command()
def diff(
    envs: Annotated[list[str] | None, typer.Argument(help="Environments to compare (default: all).", show_default=False)] = None,
    base: Annotated[str | None, typer.Option("--base", help="git ref to compare with (synthesized in a temporary worktree).")] = None,
    base_outdir: Annotated[Path | None, typer.Option("--base-outdir", help="An existing synth output to compare with.")] = None,
    base_env_dir: Annotated[Path | None, typer.Option("--base-env-dir", help="The base's environment files (default: --env-dir).")] = None,
    outdir: OutdirOpt = None,
    env_dir: EnvDirOpt = ENV_DIR,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """The cost change of the working tree against a git ref or a synth output; exit 1 when an
    environment rises more than its budget.max_increase_pct or crosses its budget."""
    from infra.cost import diff as cost_diff

    result = cost_diff.against_base(
        envs or None, outdir_or_default(outdir), env_dir, base=base, base_outdir=base_outdir, base_env_dir=base_env_dir
    )
    if fmt is Format.json:
        emit(json.dumps(result.to_dict(), indent=2), output)
    elif output is not None or fmt is Format.markdown:
        emit(cost_diff.markdown(result), output)
    else:
        out.print(cost_diff.markdown(result), markup=False)
    for reason in result.failing:
        say(reason, prefix="cost check failed:", prefix_style="red")
    if result.failing:
        raise typer.Exit(EXIT_FINDINGS)


@app.command()
def refresh(
    envs: Annotated[
        list[str] | None, typer.Argument(help="Environments whose prices to refresh (default: all).", show_default=False)
    ] = None,
    outdir: OutdirOpt = None,
    env_dir: EnvDirOpt = ENV_DIR,
    catalog: Annotated[
        Path | None, typer.Option("--catalog", help="The price catalog to rewrite (default: infra/cost/prices.yaml).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change; write nothing.")] = False,
    aws: Annotated[bool, typer.Option("--aws/--no-aws", help="Read the AWS Price List API and EC2 spot price history.")] = True,
    gcp: Annotated[bool, typer.Option("--gcp/--no-gcp", help="Read the Cloud Billing Catalog API.")] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also list the keys no API is asked for.")] = False,
    fmt: FormatOpt = Format.table,
    today: Annotated[str | None, typer.Option("--today", hidden=True, help="The date written as `read` (YYYY-MM-DD).")] = None,
) -> None:
    """Re-read the prices the synthesized stacks use from the providers' price APIs (needs credentials)
    and rewrite only the catalog entries whose value, source or date changed; exit 1 when a price the
    stacks use could not be read."""
    import datetime as dt

    from infra.cost import refresh as cost_refresh

    try:
        day = dt.date.fromisoformat(today) if today else None
    except ValueError:
        raise cost_refresh.RefreshError(f"--today {today!r}: write YYYY-MM-DD") from None
    clouds = [c for c, on in (("aws", aws), ("gcp", gcp)) if on]
    result = cost_refresh.refresh(
        outdir_or_default(outdir), env_dir, envs or None, clouds=clouds, catalog_path=catalog, dry_run=dry_run, today=day
    )
    if fmt is Format.json:
        print(
            json.dumps(
                {
                    "catalog": str(result.catalog),
                    "today": result.today.isoformat(),
                    "written": result.written,
                    "asked": len(result.wanted),
                    "changes": [
                        {"cloud": c.cloud, "region": c.region, "key": c.key, "what": c.what, "old": c.old, "new": c.new, "ref": c.ref}
                        for c in result.changes
                    ],
                    "misses": [
                        {"cloud": m.cloud, "region": m.region, "key": m.key, "kind": m.kind, "reason": m.reason} for m in result.misses
                    ],
                },
                indent=2,
            )
        )
    else:
        for change in result.changes:
            out.print(change.text(), markup=False)
    for m in result.misses:
        if m.kind != "skipped":
            say(f"{m.cloud} {m.region} {m.key}: {m.reason}", prefix=f"{m.kind}:", prefix_style="yellow")
        elif verbose:
            say(f"{m.cloud} {m.region} {m.key}: {m.reason}", prefix="not read:")
    skipped = sum(m.kind == "skipped" for m in result.misses)
    done = "would change" if result.dry_run else "changed"
    say(
        f"refresh: asked for {len(result.wanted)} price(s); {len(result.changes)} {done} in {result.catalog}"
        + (f"; {skipped} kept as they are (no API is asked for them; --verbose lists them)" if skipped else "")
        + ("" if result.changes else "; the catalog is as it was")
    )
    if result.exit_code:
        raise typer.Exit(result.exit_code)


def tco(
    envs: Annotated[list[str] | None, typer.Argument(help="Environments to include (default: all).", show_default=False)] = None,
    outdir: OutdirOpt = None,
    env_dir: EnvDirOpt = ENV_DIR,
    report_dir: Annotated[Path, typer.Option("--report-dir", help="Where tco.md, tco.html, tco.json and the PNG charts go.")] = Path(
        "reports"
    ),
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="KEY=VALUE: override an assumption of infra/tco/tco.yaml (repeatable).", show_default=False),
    ] = None,
    years: Annotated[int | None, typer.Option("--years", help="Horizon in years (assumption horizon_years).")] = None,
    growth: Annotated[float | None, typer.Option("--growth-pct", help="Growth a year in % (assumption growth_pct_per_year).")] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """5-year TCO per environment and for the platform: cloud (on-demand, as configured, committed)
    against on-prem GPU servers with the same GPU capacity, with the break-even month."""
    from infra.cost.estimate import estimate as run_estimate
    from infra.tco import model, render

    sets = list(overrides or [])
    if years is not None:
        sets.append(f"horizon_years={years}")
    if growth is not None:
        sets.append(f"growth_pct_per_year={growth}")
    assumptions = model.load_assumptions(sets)
    result = model.build(run_estimate(outdir_or_default(outdir), env_dir, envs or None), assumptions)
    files = render.write(result, report_dir)
    if fmt is Format.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
    elif fmt is Format.markdown:
        print(render.markdown(result, {k.removeprefix("chart: "): str(v) for k, v in files.items() if k.startswith("chart")}))
    else:
        table = Table(*render.SUMMARY_HEADER, title=f"{int(assumptions['horizon_years'])}-year TCO", title_justify="left")
        for row in render.summary_rows(result):
            table.add_row(*row)
        show(table)
        say(result.verdict(), prefix="verdict (the platform row):")
    say("wrote " + ", ".join(str(p) for p in files.values()))
