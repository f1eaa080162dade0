"""ci-matrix, smoke, promote, promotion-check, deploy plan|apply: getting an environment from a
merge to running, and from one environment to the next."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from infra.cli.options import ENV_DIR, EnvDirOpt, FormatOpt, outdir_or_default
from infra.cli.output import Format, emit, say, show
from infra.errors import EXIT_FINDINGS, InfraError
from infra.tables import Table, styled

if TYPE_CHECKING:
    from environments.schema import Environment


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


def images(
    env: Annotated[str, typer.Argument(help="Environment about to be deployed.")],
    fmt: FormatOpt = Format.table,
    env_dir: EnvDirOpt = ENV_DIR,
) -> None:
    """The images ENV pins and how each reaches its registry before the environment stack is applied:
    built from the merged commit (a tag, in the first environment) or copied by digest from the
    environment that promotes into it (digest preserved), or already there."""
    from environments.loader import load_environments
    from infra.images import image_pins

    envs = load_environments(env_dir)
    pins = image_pins(envs.named(env), envs)
    if fmt is Format.json:
        print(json.dumps([p.to_dict() for p in pins], indent=2))
    else:
        table = Table("field", "cloud", "image", "how", title=f"images of {env}")
        for p in pins:
            table.add_row(p.field, p.cloud, p.repository + p.ref, f"copy from {p.copy_from}" if p.copy_from else p.action)
        show(table)


def promote(
    source: Annotated[str, typer.Option("--from", help="The environment whose images passed (e.g. dev).")],
    target: Annotated[str, typer.Option("--to", help="The environment it promotes to (e.g. staging).")],
    evidence: Annotated[
        Path | None,
        typer.Option("--evidence", help="The source's smoke record; default: from its last deploy run, through GitHub's API."),
    ] = None,
    repository: Annotated[str | None, typer.Option("--repository", help="owner/name (default: $GITHUB_REPOSITORY).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would change; write nothing.")] = False,
    fmt: FormatOpt = Format.table,
    env_dir: EnvDirOpt = ENV_DIR,
) -> None:
    """Pin, by digest, the images that passed SOURCE's smoke checks into TARGET's environment file
    (comments and order kept), and print the branch and pull-request text to open. Without
    --evidence, the record comes from SOURCE's newest successful deploy run (artifact by digest)."""
    from environments.loader import load_environments
    from infra.promote import promote as run_promote
    from infra.smoke import load_evidence

    envs = load_environments(env_dir)
    data = load_evidence(evidence) if evidence is not None else _deployed_evidence(envs.named(source), repository)
    result = run_promote(source, target, data, envs, write=not dry_run)
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


deploy_app = typer.Typer(
    no_args_is_help=True,
    help="Apply what was reviewed: `plan` after the merge (compared with the review), `apply` after the approval (compared with the plan).",
)
StackOpt = Annotated[
    list[str] | None, typer.Option("--stack", help="Only this stack of the environment (repeat); default: all, in apply order.")
]


def _github_default(name: str) -> str:
    import os

    return os.environ.get(name, "")


def _push_before() -> str:
    """The push's previous head, from the event payload Actions writes ($GITHUB_EVENT_PATH)."""
    import os

    path = os.environ.get("GITHUB_EVENT_PATH")
    if not path or not Path(path).is_file():
        return ""
    try:
        return str(json.loads(Path(path).read_text()).get("before") or "")
    except (OSError, ValueError):
        return ""


@deploy_app.command("plan")
def deploy_plan(
    env: Annotated[str, typer.Argument(help="Environment to deploy (its stacks in --outdir).")],
    record: Annotated[Path, typer.Option("--record", help="Write the deploy plan here (JSON; `infra deploy apply --planned` reads it).")],
    review: Annotated[
        Path | None, typer.Option("--review", help="A local review.json instead of the merged pull request's, found through GitHub.")
    ] = None,
    repository: Annotated[str | None, typer.Option("--repository", help="owner/name (default: $GITHUB_REPOSITORY).")] = None,
    sha: Annotated[str | None, typer.Option("--sha", help="The pushed commit (default: $GITHUB_SHA).")] = None,
    branch: Annotated[str | None, typer.Option("--branch", help="The branch pushed to (default: $GITHUB_REF_NAME).")] = None,
    before: Annotated[str | None, typer.Option("--before", help="The push's previous head (default: the event payload's).")] = None,
    summary: Annotated[Path | None, typer.Option("--summary", help="Append the plan as Markdown here ($GITHUB_STEP_SUMMARY).")] = None,
    stacks: StackOpt = None,
    outdir: Annotated[Path | None, typer.Option("--outdir", help="Synth output (default: cdktf.out).")] = None,
    env_dir: EnvDirOpt = ENV_DIR,
) -> None:
    """Plan ENV after the merge and compare it, value by value, with the review of the merged pull
    request (found through GitHub's API: the merge, the approval of its final head, that head's
    review run and its artifact by digest). Exit 3, nothing recorded, when they differ or no review
    covers the push."""
    from environments.loader import load_environments
    from infra.clouds.github import GitHub
    from infra.deploy.gate import Reviewed, plan_deploy
    from infra.deploy.provenance import find_review
    from infra.git import ROOT, git

    environment = load_environments(env_dir).named(env)
    commit = sha or _github_default("GITHUB_SHA") or git(ROOT, "rev-parse", "HEAD")
    if review is not None:
        reviewed, provenance = Reviewed.load(review, env), {"file": str(review)}
    else:
        repo = repository or _github_default("GITHUB_REPOSITORY") or (environment.ci.repository if environment.ci else "")
        pushed = (branch or _github_default("GITHUB_REF_NAME")).removeprefix("refs/heads/")
        if pushed != environment.branch:
            raise InfraError(f"{env} deploys from {environment.branch!r}, not from {pushed or '(no --branch)'!r}")
        gh = GitHub.from_env(repo)
        evidence, report = find_review(
            gh,
            sha=commit,
            branch=pushed,
            before=before if before is not None else _push_before(),
            requires_approval=environment.requires_approval,
        )
        reviewed, provenance = Reviewed.from_report(report, env, f"review of #{evidence.pull_request}"), evidence.to_dict()
    result = plan_deploy(outdir_or_default(outdir), env, reviewed, commit=commit, review=provenance, only=stacks)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    text = result.markdown()
    if summary is not None:
        with summary.open("a") as fh:
            fh.write(text)
    print(text)
    say(f"{record}", prefix="deploy plan recorded:", prefix_style="green")


@deploy_app.command("apply")
def deploy_apply(
    env: Annotated[str, typer.Argument(help="Environment to deploy (its stacks in --outdir).")],
    planned: Annotated[Path, typer.Option("--planned", help="The deploy plan record the approval was given for (infra deploy plan).")],
    stacks: StackOpt = None,
    record: Annotated[Path | None, typer.Option("--record", help="Write what was applied here (JSON).")] = None,
    check_only: Annotated[bool, typer.Option("--check-only", help="Plan and compare; apply nothing.")] = False,
    outdir: Annotated[Path | None, typer.Option("--outdir", help="Synth output (default: cdktf.out).")] = None,
) -> None:
    """Plan ENV's stacks again, compare with the approved deploy plan (every value; a pending stack
    with the review), and apply the plan just made. Exit 3, nothing applied from that stack on,
    when they differ."""
    from infra.deploy.gate import Record, apply_deploy

    result = apply_deploy(outdir_or_default(outdir), env, Record.load(planned), only=stacks, apply=not check_only)
    for sr in result.stacks:
        say(f"{sr.stack}: {len(sr.applied)} change(s) {'compared' if check_only else 'applied'}, compared with the {sr.compared_with}")
        for note in sr.notes:
            say(note, prefix="  note:")
    if record is not None:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    print(json.dumps(result.to_dict(), indent=2))


def _deployed_evidence(source: Environment, repository: str | None) -> dict[str, Any]:
    """SOURCE's smoke record from its newest successful deploy run on its branch (deploy.yml, push,
    artifact deploy-<source> checked by digest): never an artifact found by name."""
    import tempfile

    from infra.clouds.github import GitHub
    from infra.deploy.provenance import deploy_evidence
    from infra.smoke import load_evidence

    repo = repository or _github_default("GITHUB_REPOSITORY") or (source.ci.repository if source.ci else "")
    _, body = deploy_evidence(GitHub.from_env(repo), env=source.name, branch=source.branch, member=f"smoke-{source.name}.json")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"smoke-{source.name}.json"
        path.write_bytes(body)
        data: dict[str, Any] = load_evidence(path)
    return data


def promotion_check(
    target: Annotated[str, typer.Option("--to", help="The environment the pull request deploys.")],
    head: Annotated[str, typer.Option("--head", help="The pull request's head commit.")],
    evidence: Annotated[
        Path | None,
        typer.Option("--evidence", help="The source's smoke record; default: from its last deploy run, through GitHub's API."),
    ] = None,
    repository: Annotated[str | None, typer.Option("--repository", help="owner/name (default: $GITHUB_REPOSITORY).")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the Markdown here.")] = None,
    env_dir: EnvDirOpt = ENV_DIR,
) -> None:
    """Whether a promotion pull request carries exactly what the source environment runs (its last
    apply's commit and the digests that passed its smoke checks); exit 1 when it does not. Without
    --evidence, the record is read from the newest successful deploy.yml run of a push to the
    source's branch (its artifact deploy-<source>, checked by digest)."""
    from environments.loader import load_environments
    from infra.promote import promotion_check as check
    from infra.smoke import load_evidence

    envs = load_environments(env_dir)
    if evidence is None:
        source = envs.source_of(envs.named(target).name)
        if source is None:
            raise InfraError(f"no environment promotes into {target}: nothing to check")
        data = _deployed_evidence(source, repository)
    else:
        data = load_evidence(evidence)
    exact, text = check(data, head, envs, target)
    emit(text, output)
    if not exact:
        raise typer.Exit(EXIT_FINDINGS)
