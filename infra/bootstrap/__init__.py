"""``infra bootstrap ENV``: what must exist before an environment's first plan, and that code in the
stacks cannot create (docs/bootstrap.md).

* AWS (:mod:`infra.bootstrap.aws`): GitHub's OIDC provider, the permissions boundary, the deploy,
  plan and break-glass roles, the state key, the S3 state bucket on that key.
* GCP (:mod:`infra.bootstrap.gcp`): the APIs (plan-time ones included), the Artifact Registry and
  Cloud Build service agents, the deploy and plan service accounts and their roles (project and
  billing account), Workload Identity Federation for the repository and its bindings.
* a GCS state bucket (:mod:`infra.bootstrap.gcs`) when the backend is ``gcs``.

Idempotent: each setting is read first and written only when it is missing or weaker than ours, so a
second run changes nothing. It never takes something away: where it would have to weaken or delete
a setting it raises :class:`BootstrapRefused` (exit 1) with the reason before writing anything (on GCP,
the APIs may already be enabled by then: the reads need them, and enabling an API weakens nothing).
"""

from __future__ import annotations

from collections.abc import Iterable

from environments.schema import Cloud, Environment
from infra.bootstrap.aws import TLS_SID, tls_statement
from infra.bootstrap.result import BootstrapRefused, Result, Step
from infra.errors import InfraError

__all__ = ["TLS_SID", "BootstrapRefused", "Result", "Step", "bootstrap", "tls_statement"]


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
