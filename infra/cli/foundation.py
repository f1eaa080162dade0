"""bootstrap and preflight: what must exist before an environment's first apply, and what must be true."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from infra.cli.options import ENV_DIR, EnvDirOpt, FormatOpt
from infra.cli.output import Format, emit, say, show
from infra.errors import EXIT_FINDINGS, InfraError
from infra.tables import Table, styled

CloudsOpt = Annotated[
    list[str] | None,
    typer.Option("--cloud", help="Only this cloud (aws, gcp; repeat; none: no cloud). Default: every cloud of the environment."),
]


def _clouds(environment: object, cloud: list[str] | None) -> tuple[str, ...]:
    if cloud == ["none"]:  # preflight: only the repository's side (GitHub Environments, OIDC template, placeholders)
        return ()
    clouds = tuple(cloud or [c for c in ("aws", "gcp") if getattr(environment, c) is not None])
    if unknown := sorted(set(clouds) - {"aws", "gcp"}):
        raise InfraError(f"--cloud {unknown}: one of aws, gcp")
    return clouds


def bootstrap(
    env: Annotated[str, typer.Argument(help="Environment whose state and CI identities to create.")],
    roles: Annotated[
        bool, typer.Option("--roles/--no-roles", help="Also the CI identities (AWS roles, key, boundary; GCP APIs, accounts, WIF).")
    ] = True,
    cloud: CloudsOpt = None,
    fmt: FormatOpt = Format.table,
    env_dir: EnvDirOpt = ENV_DIR,
) -> None:
    """Create ENV's remote state and CI identities (boto3; the Google REST APIs): idempotent, and it
    refuses (exit 1, nothing written) where it would have to weaken a setting; exit 1 also when a
    finding needs a person (the environment file names another Workload Identity provider)."""
    from environments.loader import load_environments
    from infra.bootstrap import bootstrap as run_bootstrap

    environment = load_environments(env_dir).named(env)
    clouds = _clouds(environment, cloud)
    result = run_bootstrap(environment, roles=roles, clouds=clouds, check_account=True)  # type: ignore[arg-type]
    if fmt is Format.json:
        print(json.dumps(result.to_dict(), indent=2))
    elif fmt is Format.markdown:
        lines = [f"## bootstrap {env}", "", "| what | status | detail |", "| --- | --- | --- |"]
        lines += [f"| {s.what} | {s.status} | {s.detail} |" for s in result.steps]
        lines += ["", *[f"- **to do**: {f}" for f in result.findings]]
        emit("\n".join(lines))
    else:
        table = Table("what", "status", "detail", title=f"bootstrap {env}")
        for step in result.steps:
            table.add_row(step.what, step.status, step.detail)
        show(table)
        for finding in result.findings:
            say(finding, prefix="to do:", prefix_style="bold red")
        say("changed" if result.changed else "nothing to change")
    if result.findings:
        raise typer.Exit(EXIT_FINDINGS)


def preflight(
    env: Annotated[str, typer.Argument(help="Environment about to be applied for the first time.")],
    images: Annotated[bool, typer.Option("--images", help="Also check that every image the environment pins exists.")] = False,
    cloud: CloudsOpt = None,
    github: Annotated[bool, typer.Option("--github/--no-github", help="Check the repository's environments and OIDC template.")] = True,
    fmt: FormatOpt = Format.table,
    env_dir: EnvDirOpt = ENV_DIR,
) -> None:
    """Check on the live account, project and repository what ENV's first apply needs and code
    cannot create (quotas, zones, offerings, bootstrap's identities, groups, connections, GitHub
    Environments, no placeholders left); exit 1 with what to do for each failure."""
    from environments.loader import load_environments
    from infra.preflight import preflight as run_preflight

    environments = load_environments(env_dir)
    environment = environments.named(env)
    target = environments.get(environment.promotes_to or "")
    report = run_preflight(
        environment, file=environments.file_of(env), images=images, clouds=_clouds(environment, cloud), github=github, promotes_to=target
    )
    if fmt is Format.json:
        print(json.dumps(report.to_dict(), indent=2))
    elif fmt is Format.markdown:
        emit(report.markdown())
    else:
        table = Table("check", "subject", "result", "detail / what to do", title=f"preflight {env}")
        marks = {True: styled("ok", "green"), False: styled("FAIL", "bold red"), None: styled("skip", "dim")}
        for check in report.checks:
            table.add_row(check.name, check.subject, marks[check.ok], check.fix if check.ok is False else check.detail)
        show(table)
        say(report.summary(), style="green" if report.passed else "bold red")
    if not report.passed:
        raise typer.Exit(EXIT_FINDINGS)
