"""One Cloud KMS key ring per environment and a rotating key for Artifact Registry (CMEK).

Key rings and keys cannot be deleted in Cloud KMS (destroying only disables the key versions), so
the key carries ``prevent_destroy`` (CKV_GCP_82) and its names must never be reused.
"""

from __future__ import annotations

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_google.kms_crypto_key import KmsCryptoKey
from cdktf_cdktf_provider_google.kms_crypto_key_iam_member import KmsCryptoKeyIamMember
from cdktf_cdktf_provider_google.kms_key_ring import KmsKeyRing
from constructs import Construct

from environments.schema import Environment

ROTATION_SECONDS = 90 * 86400  # CKV_GCP_43: rotate at least every 90 days


class ArtifactRegistryKey(Construct):
    """Exposes ``key_id`` and ``grants`` (the IAM members a repository must wait for)."""

    def __init__(self, scope: Construct, id_: str, *, env: Environment, project_number: str) -> None:
        super().__init__(scope, id_)
        assert env.gcp is not None
        ring = KmsKeyRing(self, "ring", name=env.resource_name("keys"), location=env.gcp.region, project=env.gcp.project_id)
        key = KmsCryptoKey(
            self,
            "artifact-registry",
            name=env.resource_name("artifact-registry"),
            key_ring=ring.id,
            purpose="ENCRYPT_DECRYPT",
            rotation_period=f"{ROTATION_SECONDS}s",
            lifecycle=TerraformResourceLifecycle(prevent_destroy=True),
        )
        # Artifact Registry encrypts with its service agent, which must be able to use the key; the
        # agent exists only once created (`infra bootstrap` does: services.generateServiceIdentity),
        # and the account that creates the repository needs the role too (Artifact Registry docs,
        # "Enabling customer-managed encryption keys": repeat the grant for that account)
        agent = KmsCryptoKeyIamMember(
            self,
            "artifact-registry-agent",
            crypto_key_id=key.id,
            role="roles/cloudkms.cryptoKeyEncrypterDecrypter",
            member=f"serviceAccount:service-{project_number}@gcp-sa-artifactregistry.iam.gserviceaccount.com",
        )
        creator = KmsCryptoKeyIamMember(
            self,
            "artifact-registry-creator",
            crypto_key_id=key.id,
            role="roles/cloudkms.cryptoKeyEncrypterDecrypter",
            member=f"serviceAccount:{env.gcp_service_account('deploy')}",
        )
        self.grants = [agent, creator]
        self.key_id = key.id
