"""Options shared by the commands, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer

from environments.loader import ENV_DIR
from environments.schema import Cloud
from infra.cli.output import Format
from infra.errors import InfraError

__all__ = ["ENV_DIR", "CloudOpt", "EnvDirOpt", "FormatOpt", "OutdirOpt", "OutputOpt", "ReportDirOpt", "outdir_or_default", "plan_specs"]

OutdirOpt = Annotated[Path | None, typer.Option("--outdir", help="Synth output (default: $CDKTF_OUTDIR or cdktf.out).")]
EnvDirOpt = Annotated[Path, typer.Option("--env-dir", help="Folder of environment files.")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write the report to this file instead of stdout.")]
ReportDirOpt = Annotated[Path, typer.Option("--report-dir", help="Where the full report files go.")]
StacksOpt = Annotated[
    list[str] | None, typer.Option("--stack", help="Only this stack of the environment (repeat); default: all, in apply order.")
]
CloudOpt = Annotated[str | None, typer.Option("--cloud", help="aws or gcp (default: aws when the environment has it).")]


def outdir_or_default(outdir: Path | None) -> Path:
    from infra.synthesized.reader import DEFAULT_OUTDIR

    return outdir or DEFAULT_OUTDIR


def plan_specs(specs: list[str] | None) -> dict[str, Path]:
    """``--plan NAME=PLAN.json`` options as a mapping."""
    plans = {}
    for spec in specs or []:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise InfraError(f"--plan {spec!r}: write NAME=PLAN.json, e.g. --plan staging=plan.json")
        plans[name] = Path(path)
    return plans


def cloud_choice(value: str | None) -> Cloud | None:
    if value not in (None, "aws", "gcp"):
        raise InfraError(f"--cloud {value!r}: one of aws, gcp")
    return cast(Cloud | None, value)
