"""policy: checkov and our rules over the synthesized stacks."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from infra.cli.options import ENV_DIR, EnvDirOpt, OutdirOpt, OutputOpt, outdir_or_default
from infra.cli.output import emit, say, show
from infra.errors import EXIT_FINDINGS


class PolicyFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"
    sarif = "sarif"


def policy(
    envs: Annotated[list[str] | None, typer.Argument(help="Environments to check (default: all).", show_default=False)] = None,
    outdir: OutdirOpt = None,
    env_dir: EnvDirOpt = ENV_DIR,
    fmt: Annotated[PolicyFormat, typer.Option("--format", "-f", help="Output format.")] = PolicyFormat.table,
    output: OutputOpt = None,
    sarif: Annotated[Path | None, typer.Option("--sarif", help="Also write SARIF 2.1.0 here (GitHub code scanning).")] = None,
) -> None:
    """checkov and our rules (MLP0nn) over the synthesized stacks; exit 1 when anything fails."""
    from infra.policy import gate, report

    result = gate.run(outdir_or_default(outdir), env_dir, envs or None)
    if sarif:
        sarif.write_text(json.dumps(report.sarif(result), indent=2) + "\n")
    if fmt is PolicyFormat.table and output is None:
        show(*report.tables(result))
    elif fmt is PolicyFormat.json:
        emit(report.to_json(result), output)
    elif fmt is PolicyFormat.sarif:
        emit(json.dumps(report.sarif(result), indent=2), output)
    else:  # markdown, or a table written to a file
        emit(report.markdown(result), output)
    failed = len(result.failures)
    if result.ok:
        say(f"({len(result.suppressed)} excepted with a reason)", prefix="policy: passed", prefix_style="green")
    else:
        say(
            f"({len(result.suppressed)} excepted with a reason)",
            prefix=f"policy: {failed} failure{'s' if failed != 1 else ''}",
            prefix_style="red",
        )
        raise typer.Exit(EXIT_FINDINGS)
