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

from infra.bootstrap.aws import TLS_SID, tls_statement
from infra.bootstrap.result import BootstrapRefused, Result, Step
from infra.bootstrap.run import bootstrap

__all__ = ["TLS_SID", "BootstrapRefused", "Result", "Step", "bootstrap", "tls_statement"]
