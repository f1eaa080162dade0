"""The AWS policy documents bootstrap writes, as pure functions of the environment (tested
offline; the names and ARNs come from ``environments/schema/identity.py``).

* :func:`boundary_policy`: the permissions boundary every role of the environment carries. A
  boundary caps what identity policies grant and grants nothing itself (IAM User Guide,
  "Permissions boundaries for IAM entities",
  https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html; it does not cap
  resource policies: API_PutRolePermissionsBoundary). Allow everything, then deny what would let a
  bounded role undo the boundary or the trust around it (the pattern of the AWS Security
  Blog, "When and where to use IAM permissions boundaries").
* the three trust policies: deploy (one OIDC subject), plan (three subject patterns), break-glass
  (the account, with MFA: IAM User Guide, "Configuring MFA-protected API access",
  ``aws:MultiFactorAuthPresent``).
* :func:`key_policy`: the state key: the account administers it and cannot use it; the CI roles use it.
* the plan role's read allow-list and data denies (``aws_plan.yaml``).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

from environments.schema import Environment
from environments.schema.identity import GITHUB_OIDC_HOST

GITHUB_AUDIENCE = "sts.amazonaws.com"
VERSION = "2012-10-17"
ADMINISTRATOR_ACCESS = "arn:aws:iam::aws:policy/AdministratorAccess"
# what the earlier bootstrap attached to the plan role; it reads data, so it is detached
LEGACY_PLAN_POLICY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
PLAN_DATA = Path(__file__).with_name("aws_plan.yaml")

# The account's key administration, without use: the "key administrators" statement of KMS's default
# key policy (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html
# #key-policy-default-allow-administrators), given to the account root so IAM policies of the account
# can delegate it and nobody is locked out (KMS's policy lockout safety check on CreateKey/PutKeyPolicy).
KEY_ADMIN_ACTIONS = [
    "kms:Create*",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Delete*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
]
KEY_USE_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]


def _account(env: Environment) -> str:
    assert env.aws is not None, "AWS policies need the aws section"
    return env.aws.account_id


def provider_arn(env: Environment) -> str:
    arn = env.github_oidc_provider_arn()
    assert arn is not None
    return arn


def role_arn(env: Environment, purpose: Literal["deploy", "plan"]) -> str:
    arn = env.github_role_arn(purpose)
    assert arn is not None
    return arn


def break_glass_arn(env: Environment) -> str:
    arn = env.break_glass_role_arn()
    assert arn is not None
    return arn


def boundary_arn(env: Environment) -> str:
    arn = env.permissions_boundary_arn()
    assert arn is not None
    return arn


def ci_role_arns(env: Environment) -> list[str]:
    return [role_arn(env, "deploy"), role_arn(env, "plan"), break_glass_arn(env)]


def state_alias_arn(env: Environment) -> str:
    arn = env.state_key_alias_arn
    assert arn is not None, "the state key is an S3 backend's"
    return arn


# --- subjects ----------------------------------------------------------------------------------------


def deploy_subject(env: Environment) -> str:
    """The apply jobs of deploy.yml, in the GitHub Environment named like the environment, on its branch."""
    return env.oidc_subject(context=f"environment:{env.name}", workflow="deploy.yml", ref=f"refs/heads/{env.branch}")


def plan_subjects(env: Environment) -> dict[str, str]:
    """Who runs a read-only plan: a pull request's review (in the ``<env>-plan`` GitHub Environment:
    with required reviewers when the environment waits for an approval, so they approve running the
    PR's code; the sub is then ``environment:<env>-plan``, never the ``pull_request`` sub every pull
    request into any branch gets), the post-merge plan of deploy.yml (no environment), nightly drift
    from the default branch."""
    assert env.ci is not None
    pr_context = f"environment:{env.github_environment('plan')}"
    default = env.ci.default_branch
    return {
        "review": env.oidc_subject(context=pr_context, workflow="review.yml", ref="refs/pull/*/merge"),
        "post-merge": env.oidc_subject(context=f"ref:refs/heads/{env.branch}", workflow="deploy.yml", ref=f"refs/heads/{env.branch}"),
        "drift": env.oidc_subject(context=f"ref:refs/heads/{default}", workflow="drift.yml", ref=f"refs/heads/{default}"),
    }


# --- trust policies ------------------------------------------------------------------------------------


def deploy_trust(env: Environment, provider: str) -> dict[str, Any]:
    """Only the deploy subject, audience sts.amazonaws.com (AWS conditions on ``aud`` and ``sub`` only:
    GitHub docs, "Configuring OpenID Connect in Amazon Web Services")."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {f"{GITHUB_OIDC_HOST}:aud": GITHUB_AUDIENCE, f"{GITHUB_OIDC_HOST}:sub": deploy_subject(env)}},
            }
        ],
    }


def plan_trust(env: Environment, provider: str) -> dict[str, Any]:
    """The plan subjects; ``StringLike`` because a pull request's ref carries its number (``*``)."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {f"{GITHUB_OIDC_HOST}:aud": GITHUB_AUDIENCE},
                    "StringLike": {f"{GITHUB_OIDC_HOST}:sub": list(plan_subjects(env).values())},
                },
            }
        ],
    }


def break_glass_trust(env: Environment) -> dict[str, Any]:
    """The account (its IAM principals allowed sts:AssumeRole on the role), only with MFA."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "AccountWithMfa",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{_account(env)}:root"},
                "Action": "sts:AssumeRole",
                "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
            }
        ],
    }


def requires_mfa(trust: dict[str, Any]) -> bool:
    """Every Allow of a trust policy demands MFA (the break-glass role's one rule)."""
    allows = [st for st in trust.get("Statement", []) if st.get("Effect") == "Allow"]
    return bool(allows) and all(
        str((st.get("Condition", {}).get("Bool", {}) or {}).get("aws:MultiFactorAuthPresent", "")).lower() == "true" for st in allows
    )


# --- the permissions boundary -------------------------------------------------------------------------


def boundary_policy(env: Environment) -> dict[str, Any]:
    account = _account(env)
    boundary = boundary_arn(env)
    statements: list[dict[str, Any]] = [
        {"Sid": "AllowWhatIdentityPoliciesGrant", "Effect": "Allow", "Action": "*", "Resource": "*"},
        {
            # the CI roles and this boundary: readable (a plan refreshes them), not changeable, not
            # passable or assumable by a bounded role
            "Sid": "NoChangesToCiIdentities",
            "Effect": "Deny",
            "NotAction": ["iam:Get*", "iam:List*"],
            "Resource": [*ci_role_arns(env), boundary],
        },
        {
            "Sid": "KeepBoundaries",
            "Effect": "Deny",
            "Action": ["iam:DeleteRolePermissionsBoundary", "iam:DeleteUserPermissionsBoundary"],
            "Resource": "*",
        },
        {
            # a bounded role creates roles and users only with this boundary (iam:PermissionsBoundary,
            # IAM User Guide access_policies_boundaries.html, "delegating responsibility")
            "Sid": "CreateOnlyWithThisBoundary",
            "Effect": "Deny",
            "Action": ["iam:CreateRole", "iam:CreateUser", "iam:PutRolePermissionsBoundary", "iam:PutUserPermissionsBoundary"],
            "Resource": "*",
            "Condition": {"StringNotEquals": {"iam:PermissionsBoundary": boundary}},
        },
        {
            "Sid": "NoChangesToGithubOidc",
            "Effect": "Deny",
            "Action": [
                "iam:CreateOpenIDConnectProvider",
                "iam:DeleteOpenIDConnectProvider",
                "iam:UpdateOpenIDConnectProviderThumbprint",
                "iam:AddClientIDToOpenIDConnectProvider",
                "iam:RemoveClientIDFromOpenIDConnectProvider",
                "iam:TagOpenIDConnectProvider",
                "iam:UntagOpenIDConnectProvider",
            ],
            "Resource": provider_arn(env),
        },
    ]
    if env.state.backend == "s3":
        bucket = env.state.bucket
        statements += [
            {
                "Sid": "KeepStateBucket",
                "Effect": "Deny",
                "Action": [
                    "s3:DeleteBucket",
                    "s3:PutBucketPolicy",
                    "s3:DeleteBucketPolicy",
                    "s3:PutBucketVersioning",
                    "s3:PutLifecycleConfiguration",
                    "s3:PutEncryptionConfiguration",
                    "s3:PutBucketPublicAccessBlock",
                    "s3:PutBucketAcl",
                    "s3:PutBucketOwnershipControls",
                    "s3:PutBucketObjectLockConfiguration",
                ],
                "Resource": f"arn:aws:s3:::{bucket}",
            },
            {"Sid": "KeepStateHistory", "Effect": "Deny", "Action": ["s3:DeleteObjectVersion"], "Resource": f"arn:aws:s3:::{bucket}/*"},
            {
                # the key does not exist when the boundary is written: it is named by its alias
                # (kms:ResourceAliases, https://docs.aws.amazon.com/kms/latest/developerguide/alias-authorization.html),
                # and the alias itself cannot be moved or deleted (alias operations need permission on
                # the alias: .../alias-access.html)
                "Sid": "KeepStateKey",
                "Effect": "Deny",
                "Action": [
                    "kms:ScheduleKeyDeletion",
                    "kms:DisableKey",
                    "kms:DisableKeyRotation",
                    "kms:PutKeyPolicy",
                    "kms:CreateGrant",
                ],
                "Resource": f"arn:aws:kms:*:{account}:key/*",
                "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": env.state_key_alias}},
            },
            {
                "Sid": "KeepStateKeyAlias",
                "Effect": "Deny",
                "Action": ["kms:DeleteAlias", "kms:UpdateAlias"],
                "Resource": state_alias_arn(env),
            },
        ]
    statements.append(
        {
            "Sid": "KeepAuditTrail",
            "Effect": "Deny",
            "Action": ["cloudtrail:StopLogging", "cloudtrail:DeleteTrail", "cloudtrail:UpdateTrail", "cloudtrail:PutEventSelectors"],
            "Resource": "*",
        }
    )
    return {"Version": VERSION, "Statement": statements}


def deploy_self_edit_deny(env: Environment) -> dict[str, Any]:
    """The deploy role's own inline Deny (the boundary says the same; this survives a boundary change)."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "NoSelfEdit",
                "Effect": "Deny",
                "Action": [
                    "iam:UpdateAssumeRolePolicy",
                    "iam:UpdateRole",
                    "iam:DeleteRole",
                    "iam:PutRolePolicy",
                    "iam:DeleteRolePolicy",
                    "iam:AttachRolePolicy",
                    "iam:DetachRolePolicy",
                    "iam:PutRolePermissionsBoundary",
                    "iam:DeleteRolePermissionsBoundary",
                    "iam:TagRole",
                    "iam:UntagRole",
                ],
                "Resource": role_arn(env, "deploy"),
            }
        ],
    }


# --- state access --------------------------------------------------------------------------------------


def state_prefix(env: Environment) -> str:
    return f"{env.project}/{env.name}/"


def state_access_policy(env: Environment, *, write: bool) -> dict[str, Any]:
    """The state objects of the environment's prefix: the deploy role reads and writes them and the
    lock file (``<key>.tflock``, Terraform's S3 lock file); the plan role reads them only (its plans
    run with ``-lock=false``)."""
    bucket = env.state.bucket
    actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"] if write else ["s3:GetObject"]
    statements: list[dict[str, Any]] = [
        {"Sid": "List", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"},
        {"Sid": "State", "Effect": "Allow", "Action": actions, "Resource": f"arn:aws:s3:::{bucket}/{state_prefix(env)}*"},
    ]
    return {"Version": VERSION, "Statement": statements}


# --- the state key ------------------------------------------------------------------------------------


def key_policy(env: Environment) -> dict[str, Any]:
    account_root = f"arn:aws:iam::{_account(env)}:root"
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "AccountAdministers",
                "Effect": "Allow",
                "Principal": {"AWS": account_root},
                "Action": KEY_ADMIN_ACTIONS,
                "Resource": "*",
            },
            {
                "Sid": "DeployAndBreakGlassUse",
                "Effect": "Allow",
                "Principal": {"AWS": [role_arn(env, "deploy"), break_glass_arn(env)]},
                "Action": KEY_USE_ACTIONS,
                "Resource": "*",
            },
            {
                "Sid": "PlanDecrypts",
                "Effect": "Allow",
                "Principal": {"AWS": role_arn(env, "plan")},
                "Action": ["kms:Decrypt", "kms:DescribeKey"],
                "Resource": "*",
            },
        ],
    }


# --- the plan role's reads ------------------------------------------------------------------------------


@cache
def plan_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(PLAN_DATA.read_text())
    return data


def plan_read_types() -> set[str]:
    return {t for group in plan_data()["read"] for t in group["types"]}


def _via(env: Environment, service: str) -> str:
    """The ``kms:ViaService`` value of a request a service makes for the caller in the environment's region."""
    assert env.aws is not None
    return f"{service}.{env.aws.region}.amazonaws.com"


def plan_read_policy(env: Environment) -> dict[str, Any]:
    groups = plan_data()["read"]
    actions = sorted({a for group in groups if "via" not in group for a in group["actions"]})
    statements: list[dict[str, Any]] = [{"Sid": "RefreshReads", "Effect": "Allow", "Action": actions, "Resource": "*"}]
    for group in (g for g in groups if "via" in g):
        sid = "".join(part.title() for part in str(group["group"]).split("-")) + "ViaService"
        statements.append(
            {
                "Sid": sid,
                "Effect": "Allow",
                "Action": group["actions"],
                "Resource": f"arn:aws:kms:{env.aws.region if env.aws else '*'}:{_account(env)}:key/*",
                "Condition": {"StringEquals": {"kms:ViaService": _via(env, group["via"])}},
            }
        )
    return {"Version": VERSION, "Statement": statements}


def plan_deny_policy(env: Environment, key_arn: str | None) -> dict[str, Any]:
    """The data denies; ``key_arn`` is the state key (``None`` before it exists: every Decrypt denied)."""
    state_objects = f"arn:aws:s3:::{env.state.bucket}/{state_prefix(env)}*" if env.state.backend == "s3" else None
    statements = []
    for deny in plan_data()["deny"]:
        statement: dict[str, Any] = {"Sid": deny["sid"], "Effect": "Deny", "Action": deny["actions"]}
        target = {"state-objects": state_objects, "state-key": key_arn}.get(deny.get("not_resource", ""), "")
        if target:
            statement["NotResource"] = target
        else:
            statement["Resource"] = "*"
        if "except_via" in deny:  # a missing kms:ViaService (a direct call) still matches the deny
            statement["Condition"] = {"StringNotEquals": {"kms:ViaService": _via(env, deny["except_via"])}}
        statements.append(statement)
    return {"Version": VERSION, "Statement": statements}
