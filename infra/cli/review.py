"""review, parity, plan, drift: what a change does, how two environments differ, what the real
infrastructure would do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from infra.cli.options import ENV_DIR, EnvDirOpt, FormatOpt, OutdirOpt, OutputOpt, ReportDirOpt, StacksOpt, outdir_or_default, plan_specs
from infra.cli.output import Format, emit, say, show
from infra.errors import EXIT_FINDINGS
from infra.review.compare import Review
from infra.tables import Table, styled


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
    from infra.review.change import review_change

    result = review_change(
        outdir=outdir,
        env_dir=env_dir,
        base=base,
        head=head,
        base_outdir=base_outdir,
        base_env_dir=base_env_dir,
        example=example,
        names=envs or None,
        plans=plan_specs(plan),
        skip=skip,
    )
    _review_output(result, fmt, output, report_dir)


def _review_output(result: Review, fmt: Format, output: Path | None, report_dir: Path) -> None:
    from infra.review import report

    report_dir.mkdir(parents=True, exist_ok=True)
    full = report_dir / "review.md"
    full.write_text(report.markdown(result, limit=None, full_report=str(full)))
    (report_dir / "review.json").write_text(report.to_json(result) + "\n")
    if fmt is Format.json:
        emit(report.to_json(result), output)
    elif fmt is Format.markdown or output is not None:
        emit(report.markdown(result, full_report=str(full)), output)
    else:
        show(*report.tables(result))
    for note in result.notes:
        say(note, prefix="note:")
    for reason in result.blocking:
        say(reason, prefix="blocking:", prefix_style="red")
    say(f"full report: {full} and {report_dir / 'review.json'}")
    if result.exit_code:
        raise typer.Exit(result.exit_code)


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
    from environments.loader import load_environments
    from infra import parity as parity_mod

    envs = load_environments(env_dir)
    result = parity_mod.compare(outdir_or_default(outdir), envs.named(env_a), envs.named(env_b))
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
            explained = ", ".join(d.explained_by) or styled("not declared", "red")
            table.add_row(d.resource, d.attribute or "(resource)", a[:60], b[:60], explained)
        show(table)
    detail = f"; {len(result.differences)} difference(s) over {result.mapped} mapped resources"
    if result.ok:
        say(detail.lstrip("; "), prefix=f"parity {env_a} → {env_b}: ok;", prefix_style="green")
    else:
        say(
            detail.lstrip("; "), prefix=f"parity {env_a} → {env_b}: {len(result.unexplained)} undeclared difference(s);", prefix_style="red"
        )
        raise typer.Exit(EXIT_FINDINGS)


def _plan_or_drift(
    env: str, outdir: Path | None, env_dir: Path, fmt: Format, output: Path | None, drift: bool, stacks: list[str] | None
) -> None:
    from infra import plan
    from infra.review import report

    result, files = plan.plan(outdir_or_default(outdir), env, env_dir, drift=drift, only=stacks)
    er = result.envs[0]
    if fmt is Format.json:
        emit(report.to_json(result), output)
    elif fmt is Format.markdown or output is not None:
        emit(report.markdown(result, full_report=str(next(iter(files.values())))), output)
    else:
        show(*report.tables(result))
    for note in result.notes:
        say(note, prefix="note:")
    say("plan JSON: " + ", ".join(str(p) for p in files.values()))
    what = "drift" if drift else "changes"
    if er.state == "changed":
        say(f"in {env}: {len(er.changes)} resource(s)", prefix=what, prefix_style="yellow")
        raise typer.Exit(EXIT_FINDINGS)
    say(f"in {env}", prefix=f"no {what}", prefix_style="green")


def plan(
    env: Annotated[str, typer.Argument(help="Environment to plan (its stacks in --outdir).")],
    outdir: OutdirOpt = None,
    env_dir: EnvDirOpt = ENV_DIR,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
    stacks: StacksOpt = None,
) -> None:
    """terraform init + plan -detailed-exitcode over ENV's stacks with the bundled engine; exit 1 when
    changes are pending, 0 when none (needs the providers and credentials the stacks use)."""
    _plan_or_drift(env, outdir, env_dir, fmt, output, drift=False, stacks=stacks)


def drift(
    env: Annotated[str, typer.Argument(help="Environment to check (its stacks in --outdir).")],
    outdir: OutdirOpt = None,
    env_dir: EnvDirOpt = ENV_DIR,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
    stacks: StacksOpt = None,
) -> None:
    """A refresh-only plan over ENV's stacks: exit 1 when the real infrastructure (or an output) no
    longer matches the state, 0 when it does."""
    _plan_or_drift(env, outdir, env_dir, fmt, output, drift=True, stacks=stacks)
