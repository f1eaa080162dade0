"""``infra bootstrap`` against a moto server (S3, IAM) and the GCS emulator, both on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from environments.loader import load_environments
from environments.schema import Environment
from infra.bootstrap import TLS_SID, BootstrapRefused, bootstrap
from infra.cli.app import main
from tests.conftest import read_env, write_env


@pytest.fixture
def staging(environments: dict[str, Environment]) -> Environment:
    return environments["staging"]


def test_bootstrap_creates_state_and_roles_then_changes_nothing(aws: str, staging: Environment) -> None:
    first = bootstrap(staging)
    assert first.changed
    s3 = boto3.client("s3", region_name="us-east-1")
    bucket = staging.state.bucket
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    sse = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert sse["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    tls = next(st for st in policy["Statement"] if st["Sid"] == TLS_SID)
    assert tls["Effect"] == "Deny" and tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rules[0]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 90 and "Expiration" not in rules[0]

    iam = boto3.client("iam")
    deploy = iam.get_role(RoleName="mlp-staging-github-deploy")["Role"]
    statement = deploy["AssumeRolePolicyDocument"]["Statement"][0]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"]["Federated"].endswith(":oidc-provider/token.actions.githubusercontent.com")
    assert statement["Condition"]["StringEquals"] == {
        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
        "token.actions.githubusercontent.com:sub": "repo:acme-ml/ml-platform:environment:staging",
    }
    plan = iam.get_role(RoleName="mlp-staging-github-plan")["Role"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert plan["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"] == [
        "repo:acme-ml/ml-platform:pull_request",
        "repo:acme-ml/ml-platform:ref:refs/heads/main",
    ]
    attached = iam.list_attached_role_policies(RoleName="mlp-staging-github-plan")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
    state = iam.get_role_policy(RoleName="mlp-staging-github-plan", PolicyName="terraform-state")["PolicyDocument"]
    assert next(s for s in state["Statement"] if s["Sid"] == "State")["Action"] == ["s3:GetObject"]  # plan reads the state only
    assert len(iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]) == 1

    second = bootstrap(staging)
    assert not second.changed, [s for s in second.steps if s.status != "unchanged"]
    assert len(iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]) == 1


def test_bootstrap_strengthens_an_existing_bucket_and_keeps_other_statements(aws: str, staging: Environment) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    bucket = staging.state.bucket
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    theirs = {
        "Sid": "AuditRead",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [theirs]}))
    result = bootstrap(staging, roles=False)
    status = {s.what: s.status for s in result.steps}
    assert f"s3://{bucket}" not in status  # existed: not created again
    assert status[f"s3://{bucket} versioning"] == "updated"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    sids = [st["Sid"] for st in json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]]
    assert sids == ["AuditRead", TLS_SID]


@pytest.mark.parametrize("case", ["public-policy", "expiring-lifecycle", "other-region"])
def test_bootstrap_refuses_to_weaken_and_writes_nothing(aws: str, staging: Environment, case: str) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    bucket = staging.state.bucket
    if case == "other-region":
        boto3.client("s3", region_name="eu-west-1").create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
    else:
        s3.create_bucket(Bucket=bucket)
    if case == "public-policy":
        public = {"Sid": "Everyone", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [public]}))
    if case == "expiring-lifecycle":
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket,
            LifecycleConfiguration={
                "Rules": [{"ID": "cleanup", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 30}}]
            },
        )
    with pytest.raises(
        BootstrapRefused, match={"public-policy": "everyone", "expiring-lifecycle": "delete the state", "other-region": "eu-west-1"}[case]
    ):
        bootstrap(staging)
    client = boto3.client("s3", region_name="eu-west-1" if case == "other-region" else "us-east-1")
    assert client.get_bucket_versioning(Bucket=bucket).get("Status") is None  # nothing was written
    assert boto3.client("iam").list_roles()["Roles"] == []


def test_bootstrap_cli_json_and_exit_codes(aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bootstrap", "dev", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["changed"] and report["steps"][0] == {"what": "s3://mlp-tfstate-111111111111", "status": "created", "detail": "us-east-1"}
    assert main(["bootstrap", "dev", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is False
    assert main(["bootstrap", "nope"]) == 2


@pytest.fixture(scope="module")
def gcs_host() -> Iterator[str]:
    from tests.servers import gcs_emulator

    with gcs_emulator() as url:
        yield url


def test_bootstrap_gcs_state_bucket(gcs_host: str, env_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_host)
    data = read_env(env_dir, "dev")
    data["state"] = {"backend": "gcs", "bucket": "mlp-dev-tfstate-gcs"}
    write_env(env_dir, "dev", data)
    env = load_environments(env_dir)["dev"]
    first = bootstrap(env, roles=False)
    assert first.steps[0].status == "created"
    from google.cloud import storage

    client = storage.Client(project=env.gcp.project_id)  # type: ignore[union-attr]
    bucket = client.get_bucket("mlp-dev-tfstate-gcs")
    assert bucket.versioning_enabled is True
    assert bucket.iam_configuration.uniform_bucket_level_access_enabled is True
    assert bucket.iam_configuration.public_access_prevention == "enforced"
    # the emulator's insert keeps no metadata (the settings above came from bootstrap's read-back
    # and patch) and reports location "US"; give it the location a real insert keeps
    bucket.location = "US-CENTRAL1"
    bucket.patch()
    second = bootstrap(env, roles=False)
    assert [(s.what, s.status) for s in second.steps] == [("gs://mlp-dev-tfstate-gcs", "unchanged")]
    bucket.versioning_enabled = False
    bucket.patch()
    third = bootstrap(env, roles=False)
    assert [(s.status, s.detail) for s in third.steps] == [("updated", "versioning")]
