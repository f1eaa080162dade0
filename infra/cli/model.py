"""model register|list|show|promote|drift|candidate|pin: the model registry of each environment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from environments.schema import Environment
from infra.cli.options import ENV_DIR, CloudOpt, EnvDirOpt, FormatOpt, cloud_choice
from infra.cli.output import Format, say, show
from infra.errors import EXIT_FINDINGS, InfraError
from infra.tables import Table

app = typer.Typer(no_args_is_help=True, help="The model registry of each environment (docs/models.md).")


def _env(name: str, env_dir: Path) -> Environment:
    from environments.loader import load_environments

    return load_environments(env_dir).named(name)


@app.command("register")
def register(
    env: Annotated[str, typer.Argument(help="Environment whose registry receives the version (where training runs: dev).")],
    artifact: Annotated[Path, typer.Argument(help="A trained version's directory, or the folder `make train` writes.")] = Path(
        "artifacts/models"
    ),
    existing_ok: Annotated[
        bool, typer.Option("--existing-ok", help="A version already registered with the same files is no error.")
    ] = False,
    cloud: CloudOpt = None,
    env_dir: EnvDirOpt = ENV_DIR,
) -> None:
    """Upload a trained version with its manifest and point `latest` at it, in the registry of every
    cloud the environment has (or --cloud's); refuses a version that exists or whose accuracy is
    below the environment's models.min_accuracy (exit 1)."""
    from infra.model_registry import register as run_register
    from infra.model_registry import registry_clouds

    environment = _env(env, env_dir)
    manifests = {
        c: run_register(environment, artifact, cloud=c, existing_ok=existing_ok) for c in registry_clouds(environment, cloud_choice(cloud))
    }
    first = next(iter(manifests.values()))
    print(json.dumps({**first, "registered_in": list(manifests)}, indent=2))
    say(f"registered {first['version']} in {env} on {', '.join(manifests)} (accuracy {first['metrics'].get('accuracy')}); latest → it")


@app.command("list")
def list_versions(
    env: Annotated[str, typer.Argument()], cloud: CloudOpt = None, fmt: FormatOpt = Format.table, env_dir: EnvDirOpt = ENV_DIR
) -> None:
    """The versions in ENV's registry, oldest first, with their metrics and aliases."""
    from infra.model_registry import registry

    versions = registry(_env(env, env_dir), cloud_choice(cloud)).versions()
    if fmt is Format.json:
        print(json.dumps(versions, indent=2))
        return
    table = Table("version", "accuracy", "registered", "git sha", "from", "aliases", title=f"models of {env}")
    for m in versions:
        table.add_row(
            m.get("version", "?"), str(m.get("metrics", {}).get("accuracy")), str(m.get("registered_at", "")),
            str(m.get("git_sha", ""))[:12], m.get("promoted_from", m.get("environment", "")), ", ".join(m["aliases"]),
        )  # fmt: skip
    show(table)


@app.command("show")
def show_version(
    env: Annotated[str, typer.Argument()],
    version: Annotated[str, typer.Argument(help="A version, or an alias (latest, staging, production).")] = "latest",
    cloud: CloudOpt = None,
    env_dir: EnvDirOpt = ENV_DIR,
) -> None:
    """A version's manifest (metrics, fingerprints, git sha, files)."""
    from infra.model_registry import registry

    reg = registry(_env(env, env_dir), cloud_choice(cloud))
    resolved = reg.alias(version) if version in ("latest", "staging", "production") else version
    manifest = reg.manifest(resolved) if resolved else None
    if manifest is None:
        raise InfraError(f"{version!r}: no such version or alias in {reg.uri}")
    from infra.model_registry import content_digest

    print(json.dumps({**manifest, "digest": content_digest(manifest)}, indent=2))


@app.command("promote")
def promote(
    source: Annotated[str, typer.Option("--from", help="The environment the version runs in.")],
    target: Annotated[str, typer.Option("--to", help="The environment it promotes to.")],
    version: Annotated[str | None, typer.Option("--version", help="Default: the version the source's alias names.")] = None,
    cloud: CloudOpt = None,
    env_dir: EnvDirOpt = ENV_DIR,
) -> None:
    """Copy a version from SOURCE's registry into TARGET's (sha256 checked) and move TARGET's alias,
    on every cloud TARGET has (or --cloud's); never retrains. Refuses a version below TARGET's
    accuracy floor."""
    from environments.loader import load_environments
    from infra.model_registry import promote as run_promote
    from infra.model_registry import registry_clouds

    envs = load_environments(env_dir)
    clouds = registry_clouds(envs.named(target), cloud_choice(cloud))
    results: dict[str, dict[str, object]] = {}
    for c in clouds:  # the version the first registry resolves is the one every cloud promotes
        results[c] = run_promote(envs, source, target, version, cloud=c)
        version = str(results[c]["version"])
    first = next(iter(results.values()))
    print(json.dumps({"version": first["version"], "alias": first["alias"], "clouds": results}, indent=2))
    for where, result in results.items():
        say(f"{target} ({where}): {result['alias']} → {result['version']} (was {result['previous']})")


@app.command("ready")
def ready(env: Annotated[str, typer.Argument()], cloud: CloudOpt = None, env_dir: EnvDirOpt = ENV_DIR) -> None:
    """Whether the alias ENV's services load names a registered version in every registry (before
    the workloads stack serves it); exit 1 with what to do for each registry that has none."""
    from environments.loader import load_environments
    from infra.model_registry import readiness

    rows = readiness(load_environments(env_dir), env, cloud=cloud_choice(cloud))
    for uri, ok, detail in rows:
        say(f"{uri}: {detail}", prefix="ok:" if ok else "not ready:", prefix_style="green" if ok else "red")
    if not all(ok for _, ok, _ in rows):
        raise typer.Exit(EXIT_FINDINGS)


@app.command("drift")
def drift(
    log: Annotated[Path, typer.Option("--log", help='The service\'s JSON log (lines with event "prediction").')],
    model_dir: Annotated[Path | None, typer.Option("--model", help="The served version's directory (its metadata.json).")] = None,
    env: Annotated[str | None, typer.Option("--env", help="Or: the environment whose alias names the served version.")] = None,
    window: Annotated[int | None, typer.Option("--window", help="Only the last N logged rows.")] = None,
    cloud: CloudOpt = None,
    fmt: FormatOpt = Format.table,
    env_dir: EnvDirOpt = ENV_DIR,
) -> None:
    """PSI per feature of logged requests against the model's training distribution; exit 1 when a
    feature shifted significantly (PSI > 0.25)."""
    from infra.model_registry import drift as run_drift

    environment = _env(env, env_dir) if env is not None else None
    result = run_drift(log, model_dir=model_dir, env=environment, window=window, cloud=cloud_choice(cloud))
    if fmt is Format.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        table = Table("feature", "PSI", "reading", title=f"drift of {result.rows} logged rows vs {result.model_version}")
        for k, v in sorted(result.psi.items(), key=lambda kv: -kv[1]):
            table.add_row(k, f"{v:.4f}", result.verdict[k])
        show(table)
    if result.significant:
        raise typer.Exit(EXIT_FINDINGS)


@app.command("candidate")
def candidate(
    source: Annotated[str, typer.Option("--from", help="Where training registers (dev).")],
    target: Annotated[str, typer.Option("--to", help="The environment whose pinned version it must beat.")],
    github_output: Annotated[Path | None, typer.Option("--github-output", help="Also append candidate= and beats= to this file.")] = None,
    cloud: CloudOpt = None,
    env_dir: EnvDirOpt = ENV_DIR,
) -> None:
    """Whether SOURCE's newest version beats the version TARGET pins (held-out accuracy, then log loss)."""
    from environments.loader import load_environments
    from infra.model_registry import candidate as run_candidate

    envs = load_environments(env_dir)
    result = run_candidate(envs.named(source), envs.named(target), cloud=cloud_choice(cloud))
    print(json.dumps(result, indent=2))
    if github_output is not None:
        with github_output.open("a") as fh:
            fh.write(f"candidate={result['candidate']}\ndigest={result['digest']}\nbeats={str(result['beats']).lower()}\n")


@app.command("pin")
def pin(
    env: Annotated[str, typer.Argument(help="The environment whose file pins the version.")],
    version: Annotated[str, typer.Argument()],
    digest: Annotated[
        str | None, typer.Option("--digest", help="The version's content digest (sha256:…; `infra model candidate` prints it).")
    ] = None,
    env_dir: EnvDirOpt = ENV_DIR,
) -> None:
    """Write models.version (and models.digest) into ENV's file (comments and order kept): what a
    promotion pull request changes; the deploy then copies only a version with that content."""
    from environments.loader import load_environments
    from infra.model_registry import pin as run_pin

    path = load_environments(env_dir).file_of(env)
    changed = run_pin(version, path, digest)
    say(f"{path}: models.version {'→ ' + version if changed else 'already ' + version}" + (f" ({digest[:19]}…)" if digest else ""))
