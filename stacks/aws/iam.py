"""IAM helpers: trust policies and policy documents as JSON text.

References (ARNs of resources in the same stack) stay Terraform interpolations inside the JSON
string, so the synthesized policy is still plain JSON that the review tooling can parse.
"""

from __future__ import annotations

import json
from typing import Any


def assume_role_policy(service: str, *, extra_actions: tuple[str, ...] = ()) -> str:
    """A trust policy that lets one AWS service assume the role."""
    return policy_document(
        [
            {
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": ["sts:AssumeRole", *extra_actions],
            }
        ]
    )


def policy_document(statements: list[dict[str, Any]]) -> str:
    """A policy document; resource ARNs may be Terraform references."""
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


def managed_policy(name: str) -> str:
    return f"arn:aws:iam::aws:policy/{name}"


def cross_account_principal(role_arn: str) -> dict[str, Any]:
    """``Principal`` and ``Condition`` that admit one role of another account in a resource policy
    (bucket, key, repository) without naming the role as the principal: a resource policy naming a
    role that does not exist yet is rejected ("Invalid principal in policy", KMS
    MalformedPolicyDocumentException), and a named role is stored as its unique id, so a recreated
    role would no longer match. The account is the principal; ``aws:PrincipalArn`` picks the role
    (re:Post knowledge center s3-invalid-principal-in-policy-error, kms-policy-error-invalid-principals)."""
    account = role_arn.split(":")[4]
    return {"Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Condition": {"ArnEquals": {"aws:PrincipalArn": role_arn}}}
