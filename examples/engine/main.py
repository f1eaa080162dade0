"""A stack that needs no downloaded provider: Terraform's built-in ``terraform_data`` resources and
outputs, with a local backend. It takes the Terraform engine end to end here, with no cloud and no
registry: ``cdktf deploy/diff/destroy staging`` and ``infra plan|drift staging --outdir cdktf.out``.

Two stacks, like an environment: ``staging`` (a model and an endpoint replaced when the model
changes) and ``staging-workloads``, which reads ``staging``'s output through a cross-stack reference
(``terraform_remote_state``), so it can be planned only once ``staging`` is applied.

``MODEL_VERSION`` (default v1) is its one input; change it to see a pending change.
``STATE_BUCKET`` (with ``AWS_ENDPOINT_URL``) keeps the state in that S3 bucket instead, the way the
environments do (S3 lock file), e.g. in a bucket made by ``infra bootstrap`` on a local moto server.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for `stacks`

import stacks  # noqa: F401  (points jsii at the bundled Node and the cdktf CLI at our engine)


def _s3_backend(stack: object, bucket: str, key: str) -> None:
    from cdktf import S3Backend

    backend = S3Backend(stack, bucket=bucket, key=key, region="us-east-1", encrypt=True)  # type: ignore[arg-type]
    backend.add_override("use_lockfile", True)
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:  # a local S3 (moto): path-style requests, no account or credential lookups
        backend.add_override("endpoints", {"s3": endpoint})
        for flag in ("use_path_style", "skip_credentials_validation", "skip_requesting_account_id", "skip_metadata_api_check"):
            backend.add_override(flag, True)


def build(outdir: str | None = None) -> object:
    from cdktf import App, LocalBackend, TerraformOutput, TerraformResource, TerraformStack

    version = os.environ.get("MODEL_VERSION", "v1")
    app = App(outdir=outdir) if outdir else App()
    # absolute state paths: the workloads stack's remote-state reference must find staging's state
    states = Path(outdir or "cdktf.out").resolve() / "stacks"
    stack = TerraformStack(app, "staging")
    bucket = os.environ.get("STATE_BUCKET")
    if bucket:
        _s3_backend(stack, bucket, "example/staging/terraform.tfstate")
    else:
        LocalBackend(stack, path=str(states / "staging" / "terraform.tfstate"))
    model = TerraformResource(stack, "model", terraform_resource_type="terraform_data")
    model.add_override("input", f"model-{version}")
    endpoint = TerraformResource(stack, "endpoint", terraform_resource_type="terraform_data")
    endpoint.add_override("input", "endpoint")
    endpoint.add_override("triggers_replace", [model.get_string_attribute("output")])
    TerraformOutput(stack, "model_output", value=model.get_string_attribute("output"))

    workloads = TerraformStack(app, "staging-workloads")
    if bucket:
        _s3_backend(workloads, bucket, "example/staging-workloads/terraform.tfstate")
    else:
        LocalBackend(workloads, path=str(states / "staging-workloads" / "terraform.tfstate"))
    serving = TerraformResource(workloads, "serving", terraform_resource_type="terraform_data")
    serving.add_override("input", model.get_string_attribute("output"))
    return app


if __name__ == "__main__":
    build().synth()  # type: ignore[attr-defined]
