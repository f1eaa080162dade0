"""ci-matrix, smoke, promote, promotion-check, deploy: getting an environment from a
merge to running, and from one environment to the next."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from infra.cli.options import ENV_DIR, EnvDirOpt, FormatOpt, outdir_or_default
from infra.cli.output import Format, emit, say, show
from infra.errors import EXIT_FINDINGS, InfraError
from infra.tables import Table, styled


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
    from infra.git import ROOT

    paths: list[str] | None = list(changed_files) if changed_files else None
    if paths is None and since:
        paths = cm.changed_since(since, ROOT)
    result = cm.matrix(branch, paths, env_dir)
    print(json.dumps(result, indent=2))
    if github_output is not None:
        with github_output.open("a") as fh:
            fh.write(cm.github_output(result))


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
    from environments.loader import load_environments
    from infra.smoke import smoke as run_smoke

    environment = load_environments(env_dir).named(env)
    clouds = tuple(cloud or [c for c in ("aws", "gcp") if getattr(environment, c) is not None])
    if unknown := set(clouds) - {"aws", "gcp"}:
        raise InfraError(f"--cloud {sorted(unknown)}: one of aws, gcp")
    report = run_smoke(environment, outdir_or_default(outdir), health=health, commit=commit, clouds=clouds)
    if record is not None:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    if fmt is Format.json:
        print(json.dumps(report.to_dict(), indent=2))
    elif fmt is Format.markdown:
        emit(report.markdown())
    else:
        table = Table("check", "resource", "result", "detail", title=f"smoke {env}")
        for c in report.checks:
            table.add_row(c.check, c.resource, "pass" if c.ok else "skipped" if c.ok is None else styled("FAIL", "red"), c.detail)
        show(table)
    if not report.checks:
        say(f"{env} declares nothing to check on {', '.join(clouds)}", prefix="note:")
    if not report.passed:
        say(report.rollback(environment.branch), prefix="smoke checks failed:", prefix_style="red")
        raise typer.Exit(EXIT_FINDINGS)
    say(f"for {env}", prefix="smoke checks passed", prefix_style="green")


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
    from environments.loader import load_environments
    from infra.promote import promote as run_promote
    from infra.smoke import load_evidence

    envs = load_environments(env_dir)
    result = run_promote(source, target, load_evidence(evidence), env_dir, write=not dry_run)
    text = result.pull_request(envs[target].branch, envs[source].branch)  # promote() checked both names
    if fmt is Format.json:
        pins = [p.__dict__ for p in result.pins]
        body = {"changed": result.changed, "branch": result.branch, "file": str(result.target_file), "pins": pins, "body": text}
        print(json.dumps(body, indent=2))
        return
    if not result.changed:
        say(f"{target} already pins these digests; nothing to promote")
        return
    verb = "would pin" if dry_run else "pinned"
    for pin in result.pins:
        say(f"{verb} {pin.field}: {pin.target_before} → @{pin.digest}")
    print(f"git switch -c {result.branch} && git commit -am 'Promote {source} images to {target}' && git push -u origin {result.branch}")
    print(f"open a pull request into {envs[target].branch}:\n")
    print(text)


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
    from infra.deploy.gate import Reviewed
    from infra.deploy.gate import deploy as run_deploy

    result = run_deploy(outdir_or_default(outdir), env, Reviewed.load(reviewed, env), saved_plans=saved_plans, apply=not check_only)
    for sr in result.stacks:
        say(f"{sr.stack}: {sr.how}; {len(sr.applied)} change(s) {'compared' if check_only else 'applied'}")
        for note in sr.notes:
            say(note, prefix="  note:")
    if record is not None:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    print(json.dumps(result.to_dict(), indent=2))


def promotion_check(
    target: Annotated[str, typer.Option("--to", help="The environment the pull request deploys.")],
    evidence: Annotated[Path, typer.Option("--evidence", help="The source environment's smoke record from its last deploy.")],
    head: Annotated[str, typer.Option("--head", help="The pull request's head commit.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the Markdown here.")] = None,
    env_dir: EnvDirOpt = ENV_DIR,
) -> None:
    """Whether a promotion pull request carries exactly what the source environment runs (its last
    apply's commit and the digests that passed its smoke checks); exit 1 when it does not."""
    from environments.loader import load_environments
    from infra.promote import promotion_check as check
    from infra.smoke import load_evidence

    exact, text = check(load_evidence(evidence), head, load_environments(env_dir), target)
    emit(text, output)
    if not exact:
        raise typer.Exit(EXIT_FINDINGS)
