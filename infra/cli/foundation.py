"""bootstrap: what must exist before an environment's first apply (and, with preflight, what must be true)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from infra.cli.options import ENV_DIR, EnvDirOpt, FormatOpt
from infra.cli.output import Format, say, show
from infra.tables import Table


def bootstrap(
    env: Annotated[str, typer.Argument(help="Environment whose state and CI roles to create.")],
    roles: Annotated[bool, typer.Option("--roles/--no-roles", help="Also the GitHub OIDC provider and the deploy/plan roles.")] = True,
    fmt: FormatOpt = Format.table,
    env_dir: EnvDirOpt = ENV_DIR,
) -> None:
    """Create ENV's remote state (S3 or GCS bucket) and the GitHub OIDC deploy/plan roles with boto3;
    idempotent, and it refuses (exit 1, nothing written) where it would have to weaken a setting."""
    from environments.loader import load_environments
    from infra.bootstrap import bootstrap as run_bootstrap

    result = run_bootstrap(load_environments(env_dir).named(env), roles=roles)
    if fmt is Format.json:
        print(json.dumps(result.to_dict(), indent=2))
        return
    table = Table("what", "status", "detail", title=f"bootstrap {env}")
    for step in result.steps:
        table.add_row(step.what, step.status, step.detail)
    show(table)
    say("changed" if result.changed else "nothing to change")
