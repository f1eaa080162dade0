"""Run every preflight check that applies to an environment (see :mod:`infra.preflight`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from environments.schema import Environment
from infra.errors import InfraError
from infra.preflight.report import Report


def preflight(
    env: Environment,
    *,
    file: Path,
    images: bool = False,
    clouds: Iterable[str] = ("aws", "gcp"),
    github: bool = True,
    promotes_to: Environment | None = None,
) -> Report:
    """Every check that applies to ``env`` on ``clouds``; ``file`` is its environment file (placeholders)."""
    clouds = tuple(clouds)
    if github and env.ci is None:
        raise InfraError(
            f"{env.name}: ci: missing; ci.repository names the repository whose environments to check (add it, or pass --no-github)"
        )
    report = Report(env.name)
    from infra.preflight.placeholders import check_placeholders

    check_placeholders(env, file, report)
    if "aws" in clouds and env.aws is not None:
        from infra.preflight.aws import check_aws

        check_aws(env, report, images=images)
    if "gcp" in clouds and env.gcp is not None:
        from infra.preflight.gcp import check_gcp

        check_gcp(env, report, images=images, promotes_to=promotes_to)
    if github:
        from infra.preflight.github import check_github

        check_github(env, report)
    return report
