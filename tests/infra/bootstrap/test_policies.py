"""The AWS documents bootstrap writes, offline: the boundary's denies, the subjects, the key policy,
the plan role's reads (every synthesized aws_* type has its group) and data denies, the sizes IAM allows."""

from __future__ import annotations

import json
from pathlib import Path

from environments.schema import Environment
from infra.bootstrap import policies as p

SNAPSHOTS = Path(__file__).resolve().parents[2] / "snapshots"


def _by_sid(doc: dict) -> dict:  # type: ignore[type-arg]
    return {st["Sid"]: st for st in doc["Statement"]}


def test_boundary_denies_what_would_undo_it(environments: dict[str, Environment]) -> None:
    env = environments["production"]
    doc = _by_sid(p.boundary_policy(env))
    assert doc["AllowWhatIdentityPoliciesGrant"] == {
        "Sid": "AllowWhatIdentityPoliciesGrant",
        "Effect": "Allow",
        "Action": "*",
        "Resource": "*",
    }
    assert doc["NoChangesToCiIdentities"]["Resource"] == [
        "arn:aws:iam::333333333333:role/mlp-production-github-deploy",
        "arn:aws:iam::333333333333:role/mlp-production-github-plan",
        "arn:aws:iam::333333333333:role/mlp-production-break-glass",
        "arn:aws:iam::333333333333:policy/mlp-production-boundary",
    ]
    assert doc["NoChangesToCiIdentities"]["NotAction"] == ["iam:Get*", "iam:List*"]
    create = doc["CreateOnlyWithThisBoundary"]
    assert "iam:CreateRole" in create["Action"] and "iam:PutRolePermissionsBoundary" in create["Action"]
    assert create["Condition"] == {
        "StringNotEquals": {"iam:PermissionsBoundary": "arn:aws:iam::333333333333:policy/mlp-production-boundary"}
    }
    assert set(doc["KeepBoundaries"]["Action"]) == {"iam:DeleteRolePermissionsBoundary", "iam:DeleteUserPermissionsBoundary"}
    assert doc["NoChangesToGithubOidc"]["Resource"] == "arn:aws:iam::333333333333:oidc-provider/token.actions.githubusercontent.com"
    bucket = doc["KeepStateBucket"]
    assert bucket["Resource"] == "arn:aws:s3:::mlp-tfstate-333333333333"
    assert {"s3:DeleteBucket", "s3:PutBucketPolicy", "s3:PutBucketVersioning", "s3:PutLifecycleConfiguration"} <= set(bucket["Action"])
    assert doc["KeepStateHistory"] == {
        "Sid": "KeepStateHistory", "Effect": "Deny", "Action": ["s3:DeleteObjectVersion"], "Resource": "arn:aws:s3:::mlp-tfstate-333333333333/*",
    }  # fmt: skip
    key = doc["KeepStateKey"]
    assert {"kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:PutKeyPolicy"} <= set(key["Action"])
    assert key["Condition"] == {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/mlp-production-tfstate"}}
    assert doc["KeepStateKeyAlias"]["Resource"] == "arn:aws:kms:us-east-1:333333333333:alias/mlp-production-tfstate"
    assert "cloudtrail:StopLogging" in doc["KeepAuditTrail"]["Action"]
    # a managed policy holds at most 6,144 characters without whitespace (IAM quotas)
    assert len(json.dumps(p.boundary_policy(env), separators=(",", ":"))) < 6144


def test_subjects_follow_the_repository_template(environments: dict[str, Environment]) -> None:
    prod, dev = environments["production"], environments["dev"]
    repo = "repo:acme-ml/ml-platform"
    wf = "job_workflow_ref:acme-ml/ml-platform/.github/workflows"
    assert p.deploy_subject(prod) == f"{repo}:environment:production:{wf}/deploy.yml@refs/heads/main"
    assert p.plan_subjects(prod) == {
        "review": f"{repo}:environment:production-plan:{wf}/review.yml@refs/pull/*/merge",  # its reviewers approve a PR plan
        "post-merge": f"{repo}:ref:refs/heads/main:{wf}/deploy.yml@refs/heads/main",
        "drift": f"{repo}:ref:refs/heads/main:{wf}/drift.yml@refs/heads/main",
    }
    # never the pull_request sub every pull request into any branch gets: dev-plan, with no reviewers
    assert p.plan_subjects(dev)["review"] == f"{repo}:environment:dev-plan:{wf}/review.yml@refs/pull/*/merge"
    assert p.plan_subjects(dev)["post-merge"] == f"{repo}:ref:refs/heads/develop:{wf}/deploy.yml@refs/heads/develop"
    trust = p.deploy_trust(prod, "arn:x")["Statement"][0]["Condition"]
    assert set(trust) == {"StringEquals"}  # no wildcard in the deploy role's trust
    assert p.requires_mfa(p.break_glass_trust(prod)) and not p.requires_mfa({"Statement": [{"Effect": "Allow"}]})


def test_key_policy_lets_the_account_administer_but_not_use(environments: dict[str, Environment]) -> None:
    doc = _by_sid(p.key_policy(environments["staging"]))
    admin = doc["AccountAdministers"]
    assert admin["Principal"] == {"AWS": "arn:aws:iam::222222222222:root"}
    assert not {"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:*"} & set(admin["Action"])
    assert {"kms:Put*", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"} <= set(admin["Action"])  # no lock-out
    assert doc["DeployAndBreakGlassUse"]["Principal"] == {
        "AWS": ["arn:aws:iam::222222222222:role/mlp-staging-github-deploy", "arn:aws:iam::222222222222:role/mlp-staging-break-glass"]
    }
    assert {"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"} <= set(doc["DeployAndBreakGlassUse"]["Action"])
    assert doc["PlanDecrypts"]["Action"] == ["kms:Decrypt", "kms:DescribeKey"]


def test_plan_reads_cover_every_synthesized_aws_type() -> None:
    types: set[str] = set()
    for snapshot in SNAPSHOTS.glob("*.json"):
        doc = json.loads(snapshot.read_text())
        names = [*doc["resources"], *doc["data"]]
        types |= {n.split(".")[0] for n in names if n.startswith(("aws_", "terraform_data"))}
    missing = types - p.plan_read_types()
    assert not missing, f"add the refresh reads of {sorted(missing)} to infra/bootstrap/aws_plan.yaml"
    for group in p.plan_data()["read"]:
        assert group["source"], group["group"]
        assert not [a for a in group["actions"] if a.split(":")[1].startswith(("Put", "Create", "Delete", "Update", "Invoke"))], group


def test_plan_denies_data_but_its_own_state(environments: dict[str, Environment]) -> None:
    env = environments["staging"]
    key = "arn:aws:kms:us-east-1:222222222222:key/abc"
    doc = _by_sid(p.plan_deny_policy(env, key))
    assert doc["NoObjectDataButState"]["NotResource"] == "arn:aws:s3:::mlp-tfstate-222222222222/mlp/staging/*"
    assert doc["NoDecryptButState"]["NotResource"] == key
    assert _by_sid(p.plan_deny_policy(env, None))["NoDecryptButState"]["Resource"] == "*"
    assert {"secretsmanager:GetSecretValue", "ssm:GetParameter"} <= set(doc["NoSecrets"]["Action"])
    data = set(doc["NoRowsLogsStreamsOrImages"]["Action"])
    assert {"logs:GetLogEvents", "logs:FilterLogEvents", "logs:StartQuery", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"} <= data
    assert {"lambda:InvokeFunction", "sqs:ReceiveMessage", "dynamodb:GetItem", "dynamodb:Scan"} <= data
    assert {"s3:PutObject", "s3:DeleteObject"} <= set(doc["NoWrites"]["Action"]) and doc["NoWrites"]["Resource"] == "*"
    reads = set(p.plan_read_policy(env)["Statement"][0]["Action"])
    assert not {"s3:GetObject", "ecr:BatchGetImage", "logs:GetLogEvents", "s3:PutObject", "kms:Decrypt"} & reads
    # Decrypt only through Lambda (GetFunction's environment variables), never a direct call
    via = _by_sid(p.plan_read_policy(env))["LambdaEnvironmentViaService"]
    assert via["Action"] == ["kms:Decrypt"] and via["Condition"] == {"StringEquals": {"kms:ViaService": "lambda.us-east-1.amazonaws.com"}}
    assert doc["NoDecryptButState"]["Condition"] == {"StringNotEquals": {"kms:ViaService": "lambda.us-east-1.amazonaws.com"}}
    # a role's inline policies share 10,240 characters without whitespace (IAM quotas)
    total = sum(
        len(json.dumps(d, separators=(",", ":")))
        for d in (p.plan_read_policy(env), p.plan_deny_policy(env, key), p.state_access_policy(env, write=False))
    )
    assert total < 10240
