"""``infra preflight ENV``: what the first apply needs and code cannot create, checked on the live
account, project and repository (docs/bootstrap.md lists every check: its API call, the failure, the fix).

Each check is small and named (``aws-zone``, ``gcp-gpu-quota``, ``github-environment``, …); it passes,
fails with one concrete line of what to do, or is skipped (said why) when it does not apply to the
environment. An API error inside a check fails that check (the error is the detail), so one missing
permission does not hide the other results. Exit 1 when any check fails (the CLI).

* :mod:`infra.preflight.aws`: boto3 (sts, ec2, service-quotas, lambda, eks, s3, kms, iam, ecr);
* :mod:`infra.preflight.gcp`: the Google REST APIs (:class:`infra.clouds.gcp.GoogleRest`);
* :mod:`infra.preflight.github`: the GitHub REST API (:mod:`infra.clouds.github`);
* :mod:`infra.preflight.placeholders`: the environment file itself.
"""

from infra.preflight.report import Check, Report, facts
from infra.preflight.run import preflight

__all__ = ["Check", "Report", "facts", "preflight"]
