"""cloudbuild submit: the GCP-side build of the app images (cloudbuild.yaml)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from infra.cli.options import ENV_DIR, EnvDirOpt
from infra.cli.output import say

app = typer.Typer(no_args_is_help=True, help="Cloud Build: the GCP build of the app images (cloudbuild.yaml).")


@app.command("submit")
def submit(
    env: Annotated[str, typer.Argument(help="Environment whose Artifact Registry receives the images.")],
    registry: Annotated[
        str, typer.Option("--registry", help="Artifact Registry repository (by its name in the environment file).")
    ] = "model-server",
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the build; exit 1 unless it succeeds.")] = False,
    env_dir: EnvDirOpt = ENV_DIR,
) -> None:
    """Upload the tracked files to the environment's Cloud Build bucket and start cloudbuild.yaml there
    with the environment's substitutions (google-cloud-build client, REST)."""
    from environments.loader import load_environments
    from infra.cloudbuild import submit as run_submit

    result = run_submit(load_environments(env_dir).named(env), registry, wait=wait)
    print(json.dumps(result.__dict__, indent=2))
    say(f"build {result.build_id} started: {result.log_url}")
