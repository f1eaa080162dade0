"""The CI/CD verbs of ``infra`` (registered on the same app as the others): ci-matrix, bootstrap,
smoke, promote, deploy, cloudbuild. Imported by :mod:`infra.cli`; each imports its module lazily."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from environments.loader import ENV_DIR, load_environments
from environments.schema import Environment
from infra.cli import EnvDirOpt, Format, FormatOpt, _emit, _pick, app, err, out
from infra.errors import EXIT_FINDINGS, InfraError

ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, env_dir: Path) -> Environment:
    return _pick(load_environments(env_dir), name)


def _pair(a: str, b: str, env_dir: Path) -> tuple[Environment, Environment]:
    """Two environments from one read of the files."""
    envs = load_environments(env_dir)
    return _pick(envs, a), _pick(envs, b)


@app.command("ci-matrix")
def ci_matrix(
    branch: Annotated[
        str | None, typer.Option("--branch", help="The branch pushed to, or a pull request's base (refs/heads/ allowed).")
    ] = None,
    changed_files: Annotated[
        list[str] | None, typer.Option("--changed-files", help="A changed path (repeat); default: --since, else everything changed.")
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="Changed paths are those between this revision and HEAD.")] = None,
    github_output: Annotated[
        Path | None, typer.Option("--github-output", help="Also append envs=, matrix=, infra=, app= lines to this file ($GITHUB_OUTPUT).")
    ] = None,
    env_dir: EnvDirOpt = ENV_DIR,
) -> None:
    """The environments a branch deploys (from the environment files) as JSON for a workflow's
    strategy.matrix, and whether the change needs the infrastructure and image jobs."""
    from infra import ci_matrix as cm

    paths: list[str] | None = list(changed_files) if changed_files else None
    if paths is None and since:
        paths = cm.changed_since(since, ROOT)
    result = cm.matrix(branch, paths, env_dir)
    print(json.dumps(result, indent=2))
    if github_output is not None:
        with github_output.open("a") as fh:
            fh.write(cm.github_output(result))


@app.command()
def bootstrap(
    env: Annotated[str, typer.Argument(help="Environment whose state and CI roles to create.")],
    roles: Annotated[bool, typer.Option("--roles/--no-roles", help="Also the GitHub OIDC provider and the deploy/plan roles.")] = True,
    fmt: FormatOpt = Format.table,
    env_dir: EnvDirOpt = ENV_DIR,
) -> None:
    """Create ENV's remote state (S3 or GCS bucket) and the GitHub OIDC deploy/plan roles with boto3;
    idempotent, and it refuses (exit 1, nothing written) where it would have to weaken a setting."""
    from rich.table import Table

    from infra.bootstrap import bootstrap as run_bootstrap

    result = run_bootstrap(_env(env, env_dir), roles=roles)
    if fmt is Format.json:
        print(json.dumps(result.to_dict(), indent=2))
        return
    table = Table("what", "status", "detail", title=f"bootstrap {env}")
    for step in result.steps:
        table.add_row(step.what, step.status, step.detail)
    out.print(table)
    err.print("changed" if result.changed else "nothing to change", highlight=False)


@app.command()
def smoke(
    env: Annotated[str, typer.Argument(help="Environment just deployed.")],
    outdir: Annotated[Path | None, typer.Option("--outdir", help="Synth output (default: cdktf.out).")] = None,
    record: Annotated[
        Path | None, typer.Option("--record", help="Write the result (checks, commit, synth hash, image digests) here.")
    ] = None,
    health: Annotated[bool, typer.Option("--health/--no-health", help="GET /healthz on each function URL when reachable.")] = True,
    commit: Annotated[str | None, typer.Option("--commit", help="The deployed commit (default: git HEAD).")] = None,
    cloud: Annotated[
        list[str] | None, typer.Option("--cloud", help="Check only this cloud (aws, gcp; repeat). Default: the environment's.")
    ] = None,
    fmt: FormatOpt = Format.table,
    env_dir: EnvDirOpt = ENV_DIR,
) -> None:
    """Check that what ENV's synthesized stacks declare exists and is healthy: with boto3 (EKS cluster
    and node groups, ECR repositories and images, Lambda functions, URLs, /healthz) and the Google
    clients (GKE cluster and node pools, Artifact Registry); exit 1 on a failed check, with what to
    roll back."""
    from rich.table import Table

    from infra.smoke import smoke as run_smoke
    from infra.synth import DEFAULT_OUTDIR

    environment = _env(env, env_dir)
    clouds = tuple(cloud or [c for c in ("aws", "gcp") if getattr(environment, c) is not None])
    if unknown := set(clouds) - {"aws", "gcp"}:
        raise InfraError(f"--cloud {sorted(unknown)}: one of aws, gcp")
    report = run_smoke(environment, outdir or DEFAULT_OUTDIR, health=health, commit=commit, clouds=clouds)
    if record is not None:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    if fmt is Format.json:
        print(json.dumps(report.to_dict(), indent=2))
    elif fmt is Format.markdown:
        lines = [
            f"### Smoke checks: {env} at `{report.commit[:12]}`",
            "",
            "| check | resource | result | detail |",
            "| --- | --- | --- | --- |",
        ]
        lines += [
            f"| {c.check} | `{c.resource}` | {'pass' if c.ok else 'skipped' if c.ok is None else '**FAIL**'} | {c.detail} |"
            for c in report.checks
        ]
        _emit("\n".join(lines), None)
    else:
        table = Table("check", "resource", "result", "detail", title=f"smoke {env}")
        for c in report.checks:
            table.add_row(c.check, c.resource, "pass" if c.ok else "skipped" if c.ok is None else "[red]FAIL[/red]", c.detail)
        out.print(table)
    if not report.checks:
        err.print(f"note: {env} declares nothing to check on {', '.join(clouds)}", highlight=False)
    if not report.passed:
        err.print(f"[red]smoke checks failed[/red]: {report.rollback(environment.branch)}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_FINDINGS)
    err.print(f"[green]smoke checks passed[/green] for {env}", highlight=False)


@app.command()
def promote(
    source: Annotated[str, typer.Option("--from", help="The environment whose images passed (e.g. dev).")],
    target: Annotated[str, typer.Option("--to", help="The environment it promotes to (e.g. staging).")],
    evidence: Annotated[Path, typer.Option("--evidence", help="The source's smoke record (infra smoke SOURCE --record FILE).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would change; write nothing.")] = False,
    fmt: FormatOpt = Format.table,
    env_dir: EnvDirOpt = ENV_DIR,
) -> None:
    """Pin, by digest, the images that passed SOURCE's smoke checks into TARGET's environment file
    (comments and order kept), and print the branch and pull-request text to open."""
    from infra.promote import promote as run_promote
    from infra.smoke import load_evidence

    envs = load_environments(env_dir)
    result = run_promote(source, target, load_evidence(evidence), env_dir, write=not dry_run)
    text = result.pull_request(envs[target].branch, envs[source].branch)  # promote() checked both names
    if fmt is Format.json:
        pins = [p.__dict__ for p in result.pins]
        print(
            json.dumps(
                {"changed": result.changed, "branch": result.branch, "file": str(result.target_file), "pins": pins, "body": text}, indent=2
            )
        )
        return
    if not result.changed:
        err.print(f"{target} already pins these digests; nothing to promote", highlight=False)
        return
    verb = "would pin" if dry_run else "pinned"
    for pin in result.pins:
        err.print(f"{verb} {pin.field}: {pin.target_before} → @{pin.digest}", highlight=False)
    print(f"git switch -c {result.branch} && git commit -am 'Promote {source} images to {target}' && git push -u origin {result.branch}")
    print(f"open a pull request into {envs[target].branch}:\n")
    print(text)


@app.command()
def deploy(
    env: Annotated[str, typer.Argument(help="Environment to deploy (its stacks in --outdir).")],
    reviewed: Annotated[Path, typer.Option("--reviewed", help="review.json of the merged pull request (infra review --format json).")],
    saved_plans: Annotated[Path | None, typer.Option("--saved-plans", help="Folder of <stack>.tfplan saved by the review's plan.")] = None,
    outdir: Annotated[Path | None, typer.Option("--outdir", help="Synth output (default: cdktf.out).")] = None,
    check_only: Annotated[bool, typer.Option("--check-only", help="Plan and compare; apply nothing.")] = False,
    record: Annotated[Path | None, typer.Option("--record", help="Write what was applied here (JSON).")] = None,
) -> None:
    """Apply ENV exactly as reviewed: the synth hash must equal the review's, and the change set
    (address and action, volatile attributes ignored) of the saved or new plan must be covered by
    the reviewed one; exit 3 (nothing applied) when it is not: a new review and approval are needed."""
    from infra.deploy import Reviewed
    from infra.deploy import deploy as run_deploy
    from infra.synth import DEFAULT_OUTDIR

    result = run_deploy(outdir or DEFAULT_OUTDIR, env, Reviewed.load(reviewed, env), saved_plans=saved_plans, apply=not check_only)
    for sr in result.stacks:
        err.print(f"{sr.stack}: {sr.how}; {len(sr.applied)} change(s) {'compared' if check_only else 'applied'}", highlight=False)
        for note in sr.notes:
            err.print(f"  note: {note}", highlight=False)
    if record is not None:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    print(json.dumps(result.to_dict(), indent=2))


@app.command("promotion-check")
def promotion_check(
    target: Annotated[str, typer.Option("--to", help="The environment the pull request deploys.")],
    evidence: Annotated[Path, typer.Option("--evidence", help="The source environment's smoke record from its last deploy.")],
    head: Annotated[str, typer.Option("--head", help="The pull request's head commit.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the Markdown here.")] = None,
    env_dir: EnvDirOpt = ENV_DIR,
) -> None:
    """Whether a promotion pull request carries exactly what the source environment runs (its last
    apply's commit and the digests that passed its smoke checks); exit 1 when it does not."""
    from infra.promote import promotion_check as check
    from infra.smoke import load_evidence

    envs = load_environments(env_dir)
    target_env = _pick(envs, target)
    source = next((e for e in envs.values() if e.promotes_to == target), None)
    if source is None:
        raise InfraError(f"nothing promotes into {target!r}")
    exact, text = check(load_evidence(evidence), head, target_env, source)
    _emit(text, output)
    if not exact:
        raise typer.Exit(EXIT_FINDINGS)


cloudbuild_app = typer.Typer(no_args_is_help=True, help="Cloud Build: the GCP build of the app images (cloudbuild.yaml).")
app.add_typer(cloudbuild_app, name="cloudbuild")


@cloudbuild_app.command("submit")
def cloudbuild_submit(
    env: Annotated[str, typer.Argument(help="Environment whose Artifact Registry receives the images.")],
    registry: Annotated[
        str, typer.Option("--registry", help="Artifact Registry repository (by its name in the environment file).")
    ] = "model-server",
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the build; exit 1 unless it succeeds.")] = False,
    env_dir: EnvDirOpt = ENV_DIR,
) -> None:
    """Upload the tracked files to the environment's Cloud Build bucket and start cloudbuild.yaml there
    with the environment's substitutions (google-cloud-build client, REST)."""
    from infra.cloudbuild import submit

    result = submit(_env(env, env_dir), registry, wait=wait)
    print(json.dumps(result.__dict__, indent=2))
    err.print(f"build {result.build_id} started: {result.log_url}", highlight=False)


model_app = typer.Typer(no_args_is_help=True, help="The model registry of each environment (docs/models.md).")
app.add_typer(model_app, name="model")
CloudOpt = Annotated[str | None, typer.Option("--cloud", help="aws or gcp (default: aws when the environment has it).")]


def _cloud(value: str | None) -> Any:
    if value not in (None, "aws", "gcp"):
        raise InfraError(f"--cloud {value!r}: one of aws, gcp")
    return value


@model_app.command("register")
def model_register(
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
    """Upload a trained version with its manifest and point `latest` at it; refuses a version that
    exists or whose accuracy is below the environment's models.min_accuracy (exit 1)."""
    from infra.models import register

    manifest = register(_env(env, env_dir), artifact, cloud=_cloud(cloud), existing_ok=existing_ok)
    print(json.dumps(manifest, indent=2))
    err.print(f"registered {manifest['version']} in {env} (accuracy {manifest['metrics'].get('accuracy')}); latest → it", highlight=False)


@model_app.command("list")
def model_list(
    env: Annotated[str, typer.Argument()], cloud: CloudOpt = None, fmt: FormatOpt = Format.table, env_dir: EnvDirOpt = ENV_DIR
) -> None:
    """The versions in ENV's registry, oldest first, with their metrics and aliases."""
    from rich.table import Table

    from infra.models import registry

    versions = registry(_env(env, env_dir), _cloud(cloud)).versions()
    if fmt is Format.json:
        print(json.dumps(versions, indent=2))
        return
    table = Table("version", "accuracy", "registered", "git sha", "from", "aliases", title=f"models of {env}")
    for m in versions:
        table.add_row(
            m.get("version", "?"), str(m.get("metrics", {}).get("accuracy")), str(m.get("registered_at", "")),
            str(m.get("git_sha", ""))[:12], m.get("promoted_from", m.get("environment", "")), ", ".join(m["aliases"]),
        )  # fmt: skip
    out.print(table)


@model_app.command("show")
def model_show(
    env: Annotated[str, typer.Argument()],
    version: Annotated[str, typer.Argument(help="A version, or an alias (latest, staging, production).")] = "latest",
    cloud: CloudOpt = None,
    env_dir: EnvDirOpt = ENV_DIR,
) -> None:
    """A version's manifest (metrics, fingerprints, git sha, files)."""
    from infra.models import registry

    reg = registry(_env(env, env_dir), _cloud(cloud))
    resolved = reg.alias(version) if version in ("latest", "staging", "production") else version
    manifest = reg.manifest(resolved) if resolved else None
    if manifest is None:
        raise InfraError(f"{version!r}: no such version or alias in {reg.uri}")
    print(json.dumps(manifest, indent=2))


@model_app.command("promote")
def model_promote(
    source: Annotated[str, typer.Option("--from", help="The environment the version runs in.")],
    target: Annotated[str, typer.Option("--to", help="The environment it promotes to.")],
    version: Annotated[str | None, typer.Option("--version", help="Default: the version the source's alias names.")] = None,
    cloud: CloudOpt = None,
    env_dir: EnvDirOpt = ENV_DIR,
) -> None:
    """Copy a version from SOURCE's registry into TARGET's (sha256 checked) and move TARGET's alias;
    never retrains. Refuses a version below TARGET's accuracy floor."""
    from infra.models import promote as run_promote

    result = run_promote(*_pair(source, target, env_dir), version, cloud=_cloud(cloud))
    print(json.dumps(result, indent=2))
    err.print(f"{target}: {result['alias']} → {result['version']} (was {result['previous']})", highlight=False)


@model_app.command("drift")
def model_drift(
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
    from rich.table import Table

    from app.monitoring import MODERATE, SIGNIFICANT
    from infra.models import drift_from_log, registry

    if (model_dir is None) == (env is None):
        raise InfraError("give exactly one of --model DIR or --env ENV")
    if model_dir is not None:
        metadata = json.loads((model_dir / "metadata.json").read_text())
    else:
        assert env is not None
        reg = registry(_env(env, env_dir), _cloud(cloud))
        served = reg.alias(reg.env.models.alias if reg.env.models else "latest")
        raw = reg.store.get(f"{reg.prefix}/{served}/metadata.json") if served else None
        if raw is None:
            raise InfraError(f"{env}: its alias names no registered version")
        metadata = json.loads(raw)
    if not metadata.get("reference"):
        raise InfraError(f"model {metadata.get('version')} carries no training distribution (trained before drift monitoring); retrain")
    values, n = drift_from_log(log, metadata["reference"], window=window)
    verdict = {k: ("significant" if v > SIGNIFICANT else "moderate" if v > MODERATE else "stable") for k, v in values.items()}
    if fmt is Format.json:
        print(json.dumps({"model_version": metadata.get("version"), "rows": n, "psi": values, "verdict": verdict}, indent=2))
    else:
        table = Table("feature", "PSI", "reading", title=f"drift of {n} logged rows vs {metadata.get('version')}")
        for k, v in sorted(values.items(), key=lambda kv: -kv[1]):
            table.add_row(k, f"{v:.4f}", verdict[k])
        out.print(table)
    if any(v == "significant" for v in verdict.values()):
        raise typer.Exit(EXIT_FINDINGS)


@model_app.command("candidate")
def model_candidate(
    source: Annotated[str, typer.Option("--from", help="Where training registers (dev).")],
    target: Annotated[str, typer.Option("--to", help="The environment whose pinned version it must beat.")],
    github_output: Annotated[Path | None, typer.Option("--github-output", help="Also append candidate= and beats= to this file.")] = None,
    cloud: CloudOpt = None,
    env_dir: EnvDirOpt = ENV_DIR,
) -> None:
    """Whether SOURCE's newest version beats the version TARGET pins (held-out accuracy, then log loss)."""
    from infra.models import candidate

    result = candidate(*_pair(source, target, env_dir), cloud=_cloud(cloud))
    print(json.dumps(result, indent=2))
    if github_output is not None:
        with github_output.open("a") as fh:
            fh.write(f"candidate={result['candidate']}\nbeats={str(result['beats']).lower()}\n")


@model_app.command("pin")
def model_pin(
    env: Annotated[str, typer.Argument(help="The environment whose file pins the version.")],
    version: Annotated[str, typer.Argument()],
    env_dir: EnvDirOpt = ENV_DIR,
) -> None:
    """Write models.version into ENV's file (comments and order kept): what a promotion pull request changes."""
    from environments.loader import environment_files
    from infra.models import pin

    _env(env, env_dir)
    path = next(f for f in environment_files(env_dir) if f.stem == env)
    changed = pin(version, path)
    err.print(f"{path}: models.version {'→ ' + version if changed else 'already ' + version}", highlight=False)
