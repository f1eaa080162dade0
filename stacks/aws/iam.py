"""IAM helpers: trust policies and policy documents as JSON, with Terraform tokens left in place."""

from __future__ import annotations

from typing import Any

from cdktf import Fn


def assume_role_policy(service: str, *, extra_actions: tuple[str, ...] = ()) -> str:
    """A trust policy that lets one AWS service assume the role."""
    return policy_document([{
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": ["sts:AssumeRole", *extra_actions],
    }])


def policy_document(statements: list[dict[str, Any]]) -> str:
    """``jsonencode`` of a policy: resource ARNs may be Terraform references."""
    return Fn.jsonencode({"Version": "2012-10-17", "Statement": statements})


def managed_policy(name: str) -> str:
    return f"arn:aws:iam::aws:policy/{name}"
