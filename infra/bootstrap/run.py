"""Bootstrap an environment on its clouds (see :mod:`infra.bootstrap`)."""

from __future__ import annotations

from collections.abc import Iterable

from environments.schema import Cloud, Environment
from infra.bootstrap.result import Result
from infra.errors import InfraError


def bootstrap(env: Environment, *, roles: bool = True, clouds: Iterable[Cloud] = ("aws",), check_account: bool = False) -> Result:
    """Create or bring up to standard the state and the CI identities of ``env`` on ``clouds``.

    The CLI passes every cloud the environment has and ``check_account=True`` (refuse credentials of
    another account than ``aws.account_id``). The defaults keep the callers that predate them (the
    end-to-end test bootstraps staging on a moto server's default account) to AWS and the state."""
    clouds = tuple(clouds)
    result = Result(env.name)
    if roles and env.ci is None:
        raise InfraError(f"{env.name}: ci: missing; ci.repository names who may assume the CI identities (add it, or pass --no-roles)")
    # the state belongs to its backend's cloud: s3 with aws, gcs with gcp
    if "aws" in clouds and (env.aws is not None or env.state.backend == "s3"):
        from infra.bootstrap.aws import bootstrap_aws

        bootstrap_aws(env, result, roles=roles, check_account=check_account)
    if "gcp" in clouds and env.state.backend == "gcs":
        from infra.bootstrap.gcs import gcs_state

        gcs_state(env, result)
    if roles and "gcp" in clouds and env.gcp is not None:
        from infra.bootstrap.gcp import bootstrap_gcp

        bootstrap_gcp(env, result)
    return result
