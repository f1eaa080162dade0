"""Remote state: one backend per environment stack, derived from the environment's identity.

An environment's AWS and GCP resources live in one stack and so in one state: ``cdktf deploy
staging`` plans and applies the whole environment at once, and the key is derived
(``<project>/<env>/terraform.tfstate``) so no two stacks can share one by mistake.
"""

from __future__ import annotations

from cdktf import GcsBackend, S3Backend, TerraformStack

from environments.schema import Environment


def configure_backend(stack: TerraformStack, env: Environment, *, key_suffix: str = "") -> None:
    key = env.state_key if not key_suffix else env.state_key.replace("terraform.tfstate", f"{key_suffix}.tfstate")
    if env.state.backend == "s3":
        # encrypt without kms_key_id writes the state with SSE-S3 (AES256), overriding the bucket's
        # default SSE-KMS (hashicorp/terraform internal/backend/remote-state/s3/client.go,
        # PutObject): name the state key bootstrap makes, by its alias, so every state write uses it
        backend = S3Backend(
            stack, bucket=env.state.bucket, key=key, region=env.state_region, encrypt=True, kms_key_id=env.state_key_alias_arn
        )
        # S3-native locking (Terraform >= 1.10): no DynamoDB table; cdktf 0.21 has no argument for it
        backend.add_override("use_lockfile", env.state.use_lockfile)
    else:
        GcsBackend(stack, bucket=env.state.bucket, prefix=key.removesuffix(".tfstate"))
