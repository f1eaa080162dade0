"""A stack that needs no downloaded provider: Terraform's built-in ``terraform_data`` resources and
outputs, with a local backend. It takes the Terraform engine end to end here, with no cloud and no
registry: ``cdktf deploy/diff/destroy staging`` and ``infra plan|drift staging --outdir cdktf.out``.

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


def build(outdir: str | None = None) -> object:
    from cdktf import App, LocalBackend, S3Backend, TerraformOutput, TerraformResource, TerraformStack

    version = os.environ.get("MODEL_VERSION", "v1")
    app = App(outdir=outdir) if outdir else App()
    stack = TerraformStack(app, "staging")
    bucket = os.environ.get("STATE_BUCKET")
    if bucket:
        backend = S3Backend(stack, bucket=bucket, key="example/staging/terraform.tfstate", region="us-east-1", encrypt=True)
        backend.add_override("use_lockfile", True)
        endpoint = os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:  # a local S3 (moto): path-style requests, no account or credential lookups
            backend.add_override("endpoints", {"s3": endpoint})
            for flag in ("use_path_style", "skip_credentials_validation", "skip_requesting_account_id", "skip_metadata_api_check"):
                backend.add_override(flag, True)
    else:
        LocalBackend(stack, path="terraform.tfstate")
    model = TerraformResource(stack, "model", terraform_resource_type="terraform_data")
    model.add_override("input", f"model-{version}")
    endpoint = TerraformResource(stack, "endpoint", terraform_resource_type="terraform_data")
    endpoint.add_override("input", "endpoint")
    endpoint.add_override("triggers_replace", [model.get_string_attribute("output")])
    TerraformOutput(stack, "model_output", value=model.get_string_attribute("output"))
    return app


if __name__ == "__main__":
    build().synth()  # type: ignore[attr-defined]
