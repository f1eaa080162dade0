"""``infra bootstrap`` on AWS against a moto server (S3, IAM, KMS, STS) on 127.0.0.1: what it
creates, that a second run changes nothing, what it strengthens, and every refusal (nothing written)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

from environments.loader import load_environments
from environments.schema import Environment
from infra.bootstrap import TLS_SID, BootstrapRefused, bootstrap
from infra.bootstrap import policies as p
from tests.conftest import read_env, write_env
from tests.fakes.aws import AwsGaps

SUB = "token.actions.githubusercontent.com:sub"
AUD = "token.actions.githubusercontent.com:aud"


def _inline(iam: object, role: str, name: str) -> dict:  # type: ignore[type-arg]
    doc = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]  # type: ignore[attr-defined]
    return json.loads(doc) if isinstance(doc, str) else doc  # type: ignore[no-any-return]


def test_bootstrap_creates_identities_key_and_state_then_changes_nothing(staging: Environment) -> None:
    first = bootstrap(staging)
    assert first.changed and not first.findings
    order = [s.what for s in first.steps if s.status == "created"]
    # the order that lets each step name what the one before made
    for before, after in [
        ("OIDC provider token.actions.githubusercontent.com", "permissions boundary mlp-staging-boundary"),
        ("permissions boundary mlp-staging-boundary", "role mlp-staging-github-deploy"),
        ("role mlp-staging-break-glass", "KMS key alias/mlp-staging-tfstate"),
        ("KMS key alias/mlp-staging-tfstate", "s3://mlp-tfstate-222222222222"),
    ]:
        assert order.index(before) < order.index(after), (before, after)

    iam = boto3.client("iam")
    deploy = iam.get_role(RoleName="mlp-staging-github-deploy")["Role"]
    assert deploy["PermissionsBoundary"]["PermissionsBoundaryArn"] == staging.permissions_boundary_arn()
    statement = deploy["AssumeRolePolicyDocument"]["Statement"][0]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"]["Federated"] == "arn:aws:iam::222222222222:oidc-provider/token.actions.githubusercontent.com"
    assert statement["Condition"] == {
        "StringEquals": {
            AUD: "sts.amazonaws.com",
            SUB: "repo:acme-ml/ml-platform:environment:staging:job_workflow_ref:acme-ml/ml-platform/.github/workflows/deploy.yml@refs/heads/staging",
        }
    }
    assert [a["PolicyArn"] for a in iam.list_attached_role_policies(RoleName="mlp-staging-github-deploy")["AttachedPolicies"]] == [
        p.ADMINISTRATOR_ACCESS
    ]
    assert _inline(iam, "mlp-staging-github-deploy", "deny-self-edit")["Statement"][0]["Resource"] == staging.github_role_arn("deploy")
    state = _inline(iam, "mlp-staging-github-deploy", "terraform-state")
    assert next(s for s in state["Statement"] if s["Sid"] == "State")["Resource"] == "arn:aws:s3:::mlp-tfstate-222222222222/mlp/staging/*"

    plan = iam.get_role(RoleName="mlp-staging-github-plan")["Role"]
    assert plan["MaxSessionDuration"] == 3600
    assert plan["PermissionsBoundary"]["PermissionsBoundaryArn"] == staging.permissions_boundary_arn()
    condition = plan["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]
    assert condition["StringEquals"] == {AUD: "sts.amazonaws.com"}
    assert condition["StringLike"][SUB] == [
        "repo:acme-ml/ml-platform:environment:staging-plan:job_workflow_ref:acme-ml/ml-platform/.github/workflows/review.yml@refs/pull/*/merge",
        "repo:acme-ml/ml-platform:ref:refs/heads/staging:job_workflow_ref:acme-ml/ml-platform/.github/workflows/deploy.yml@refs/heads/staging",
        "repo:acme-ml/ml-platform:ref:refs/heads/main:job_workflow_ref:acme-ml/ml-platform/.github/workflows/drift.yml@refs/heads/main",
    ]
    assert iam.list_attached_role_policies(RoleName="mlp-staging-github-plan")["AttachedPolicies"] == []  # not ReadOnlyAccess
    assert sorted(iam.list_role_policies(RoleName="mlp-staging-github-plan")["PolicyNames"]) == [
        "plan-deny-data",
        "plan-read",
        "terraform-state",
    ]
    reads = _inline(iam, "mlp-staging-github-plan", "terraform-state")
    assert next(s for s in reads["Statement"] if s["Sid"] == "State")["Action"] == ["s3:GetObject"]  # plan reads the state only

    glass = iam.get_role(RoleName="mlp-staging-break-glass")["Role"]
    assert "PermissionsBoundary" not in glass and glass["MaxSessionDuration"] == 3600
    trust = glass["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"AWS": "arn:aws:iam::222222222222:root"}
    assert trust["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "true"}}

    kms = boto3.client("kms", region_name="us-east-1")
    key = kms.describe_key(KeyId=staging.state_key_alias)["KeyMetadata"]
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True
    key_policy = json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    assert {s["Sid"] for s in key_policy["Statement"]} == {"AccountAdministers", "DeployAndBreakGlassUse", "PlanDecrypts"}
    deny = _inline(iam, "mlp-staging-github-plan", "plan-deny-data")
    assert next(s for s in deny["Statement"] if s["Sid"] == "NoDecryptButState")["NotResource"] == key["Arn"]

    s3 = boto3.client("s3", region_name="us-east-1")
    bucket = staging.state.bucket
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    sse = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert sse["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key["Arn"]}
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    tls = next(st for st in policy["Statement"] if st["Sid"] == TLS_SID)
    assert tls["Effect"] == "Deny" and tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rules[0]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 90 and "Expiration" not in rules[0]

    second = bootstrap(staging)
    assert not second.changed, [s for s in second.steps if s.status != "unchanged"]
    assert len(iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]) == 1
    assert (
        len(kms.list_aliases()["Aliases"])
        == len([a for a in kms.list_aliases()["Aliases"] if a["AliasName"] != staging.state_key_alias]) + 1
    )


def test_bootstrap_upgrades_what_the_earlier_bootstrap_made(staging: Environment) -> None:
    """The earlier bootstrap: plan role on ReadOnlyAccess, default-template subjects, a bucket on aws/s3."""
    iam, s3 = boto3.client("iam"), boto3.client("s3", region_name="us-east-1")
    old_trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Federated": "x"}, "Action": "sts:AssumeRoleWithWebIdentity",
                 "Condition": {"StringEquals": {SUB: "repo:acme-ml/ml-platform:pull_request"}}}]}  # fmt: skip
    iam.create_role(RoleName="mlp-staging-github-plan", AssumeRolePolicyDocument=json.dumps(old_trust), MaxSessionDuration=7200)
    iam.attach_role_policy(RoleName="mlp-staging-github-plan", PolicyArn=p.LEGACY_PLAN_POLICY)
    bucket = staging.state.bucket
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_encryption(
        Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]}
    )
    result = bootstrap(staging)
    status = {s.what: (s.status, s.detail) for s in result.steps}
    assert status["role mlp-staging-github-plan ReadOnlyAccess"][0] == "updated"
    assert iam.list_attached_role_policies(RoleName="mlp-staging-github-plan")["AttachedPolicies"] == []
    assert status["role mlp-staging-github-plan trust"][0] == "updated"
    assert status["role mlp-staging-github-plan boundary"][0] == "updated"
    assert status["role mlp-staging-github-plan session"] == ("updated", "at most 60 minutes")
    assert status[f"s3://{bucket} encryption"] == ("updated", "SSE-KMS alias/mlp-staging-tfstate (was aws:kms (aws/s3))")
    assert not bootstrap(staging).changed


def test_bootstrap_strengthens_an_existing_bucket_and_keeps_other_statements(staging: Environment) -> None:
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
    assert boto3.client("iam").list_roles()["Roles"] == []  # --no-roles: the state only


def _other_key(region: str = "us-east-1") -> str:
    return str(boto3.client("kms", region_name=region).create_key(Description="someone else's")["KeyMetadata"]["Arn"])


REFUSALS = {
    "public-policy": "everyone",
    "expiring-lifecycle": "delete the state",
    "other-region": "eu-west-1",
    "other-cmk": "does not re-key a state bucket",
    "foreign-boundary": "does not replace another boundary",
    "plan-extra-policy": "policies bootstrap did not put there (arn:aws:iam::aws:policy/AdministratorAccess)",
    "break-glass-without-mfa": "can be assumed without MFA",
    "key-pending-deletion": "PendingDeletion",
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_bootstrap_refuses_to_weaken_and_writes_nothing(staging: Environment, case: str) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    iam = boto3.client("iam")
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
    if case == "other-cmk":
        rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": _other_key()}}
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [rule]})
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:root"}, "Action": "sts:AssumeRole"}],
    }
    if case == "foreign-boundary":
        other = iam.create_policy(PolicyName="theirs", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"}]}))["Policy"]["Arn"]  # fmt: skip
        iam.create_role(RoleName="mlp-staging-github-deploy", AssumeRolePolicyDocument=json.dumps(trust), PermissionsBoundary=other)
    if case == "plan-extra-policy":
        iam.create_role(RoleName="mlp-staging-github-plan", AssumeRolePolicyDocument=json.dumps(trust))
        iam.attach_role_policy(RoleName="mlp-staging-github-plan", PolicyArn=p.ADMINISTRATOR_ACCESS)
    if case == "break-glass-without-mfa":
        iam.create_role(RoleName="mlp-staging-break-glass", AssumeRolePolicyDocument=json.dumps(trust))
    if case == "key-pending-deletion":
        kms = boto3.client("kms", region_name="us-east-1")
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=staging.state_key_alias, TargetKeyId=key)
        kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    roles_before = {r["RoleName"] for r in iam.list_roles()["Roles"]}
    with pytest.raises(BootstrapRefused, match=re.escape(REFUSALS[case])):
        bootstrap(staging)
    client = boto3.client("s3", region_name="eu-west-1" if case == "other-region" else "us-east-1")
    assert client.get_bucket_versioning(Bucket=bucket).get("Status") is None  # nothing was written
    assert {r["RoleName"] for r in iam.list_roles()["Roles"]} == roles_before
    assert iam.list_open_id_connect_providers()["OpenIDConnectProviderList"] == []


def test_bootstrap_refuses_credentials_of_another_account(environments: dict[str, Environment], as_account: Callable[[str], None]) -> None:
    as_account("999999999999")
    with pytest.raises(BootstrapRefused, match=r"account 999999999999, staging names aws\.account_id 222222222222"):
        bootstrap(environments["staging"], check_account=True)
    assert boto3.client("iam").list_roles()["Roles"] == []


def test_bootstrap_needs_a_ci_section(env_dir: Path, as_account: Callable[[str], None]) -> None:
    from infra.errors import InfraError

    data = read_env(env_dir, "dev")
    del data["ci"]
    write_env(env_dir, "dev", data)
    env = load_environments(env_dir)["dev"]
    with pytest.raises(InfraError, match="ci: missing") as exc:
        bootstrap(env)
    assert exc.value.exit_code == 2


def test_bootstrap_makes_the_runners_github_connection_pending_once(staging: Environment, aws_gaps_server: tuple[AwsGaps, str]) -> None:
    """The CodeBuild runner's project reads the connection by name: it must exist before the first
    plan. Bootstrap creates it (PENDING: the OAuth handshake has no API) and never twice."""
    gaps = aws_gaps_server[0]
    assert staging.has_ci_runner
    first = bootstrap(staging)
    step = next(s for s in first.steps if s.what == f"GitHub connection {staging.github_connection_name}")
    assert step.status == "created" and "PENDING" in step.detail and "Update pending connection" in step.detail
    assert gaps.connections == {"mlp-staging-github": "PENDING"}
    creates = [r for r in gaps.requests if r.endswith(".CreateConnection")]
    second = bootstrap(staging)
    assert [r for r in gaps.requests if r.endswith(".CreateConnection")] == creates  # not again
    assert next(s for s in second.steps if s.what.startswith("GitHub connection")).status == "unchanged"
    gaps.connections["mlp-staging-github"] = "ERROR"
    assert any("ERROR" in f for f in bootstrap(staging).findings)
