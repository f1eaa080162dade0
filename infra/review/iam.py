"""The permission delta: every grant in a stack as a row (who may do what on what), diffed
between base and head, with the added grants that broaden access flagged.

AWS: identity policies (inline role policies, standalone policies), trust policies
(``assume_role_policy``), resource policies (any ``policy`` document with a ``Principal``, KMS key
policies), managed-policy attachments, Lambda permissions and function URLs. GCP: every
``*_iam_member`` / ``*_iam_binding`` / ``*_iam_policy``. References to other resources are shown as
their construct paths, so a grant reads the same in base and head.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from infra.review.model import Grant, PermissionChange
from infra.synthesized.reader import Resource, Stack

_REF = re.compile(r"\$\{([a-z][a-z0-9_]*)\.([A-Za-z0-9_-]+)(\.[^}]*)?\}")
PUBLIC = frozenset({"*", "AWS:*", "allUsers", "allAuthenticatedUsers"})
ADMIN_POLICIES = ("AdministratorAccess", "PowerUserAccess", "IAMFullAccess")
PRIMITIVE_ROLES = frozenset({"roles/owner", "roles/editor"})


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _readable(stack: Stack, text: str) -> str:
    """``${aws_iam_role.role_1A2B.arn}`` -> ``${dev/aws-eks/node-role.arn}``."""

    def sub(m: re.Match[str]) -> str:
        res = stack.by_reference(m.group(0))
        return "${" + (res.path if res else f"{m.group(1)}.{m.group(2)}") + (m.group(3) or "") + "}"

    return _REF.sub(sub, text)


def _doc(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            doc = json.loads(value)
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None
    return None


def _principals(statement: dict[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if principal is None:
        return []
    if principal == "*":
        return ["*"]
    if isinstance(principal, dict):
        return [f"{kind}:{p}" for kind, values in sorted(principal.items()) for p in _list(values)]
    return [str(p) for p in _list(principal)]


def _statements(stack: Stack, owner: Resource, kind: str, document: Any, default_principal: str = "") -> Iterator[Grant]:
    doc = _doc(document)
    if doc is None:
        return
    for st in _list(doc.get("Statement", [])):
        if not isinstance(st, dict):
            continue
        effect = str(st.get("Effect", "Allow"))
        condition = json.dumps(st["Condition"], sort_keys=True) if st.get("Condition") else ""
        actions = [f"NOT {a}" for a in _list(st["NotAction"])] if "NotAction" in st else _list(st.get("Action", []))
        resources = [f"NOT {r}" for r in _list(st["NotResource"])] if "NotResource" in st else _list(st.get("Resource", [""]))
        for principal in _principals(st) or [default_principal]:
            for action in actions:
                for resource in resources:
                    yield Grant(
                        stack.name,
                        kind,
                        owner.path,
                        effect,
                        _readable(stack, principal),
                        _readable(stack, str(action)),
                        _readable(stack, str(resource)),
                        _readable(stack, condition),
                    )


def grants(stack: Stack) -> Iterator[Grant]:
    """Every grant the stack declares."""
    for res in stack.resources:
        rtype, v = res.type, res.values
        role = _readable(stack, str(v.get("role", "")))
        if rtype == "aws_iam_role":
            yield from _statements(stack, res, "trust-policy", v.get("assume_role_policy"))
            for inline in _list(v.get("inline_policy") or []):
                if isinstance(inline, dict):
                    yield from _statements(stack, res, "identity-policy", inline.get("policy"), f"role {res.path}")
        elif rtype in ("aws_iam_role_policy", "aws_iam_policy", "aws_iam_user_policy", "aws_iam_group_policy"):
            yield from _statements(stack, res, "identity-policy", v.get("policy"), f"role {role}" if role else "")
        elif rtype.startswith("aws_iam_") and rtype.endswith("_policy_attachment"):
            who = role or _readable(stack, str(v.get("user") or v.get("group") or ""))
            yield Grant(stack.name, "managed-policy", res.path, "Allow", who, _readable(stack, str(v.get("policy_arn", ""))), "*")
        elif rtype == "aws_lambda_permission":
            yield Grant(
                stack.name,
                "resource-policy",
                res.path,
                "Allow",
                str(v.get("principal", "")),
                str(v.get("action", "")),
                _readable(stack, str(v.get("function_name", ""))),
                _readable(stack, str(v.get("source_arn", ""))),
            )
        elif rtype == "aws_lambda_function_url":
            auth = str(v.get("authorization_type", ""))
            principal = "*" if auth == "NONE" else "IAM-authenticated callers"
            yield Grant(
                stack.name,
                "function-url",
                res.path,
                "Allow",
                principal,
                "lambda:InvokeFunctionUrl",
                _readable(stack, str(v.get("function_name"))),
            )
        elif rtype.startswith("aws_") and "policy" in v:
            kind = "key-policy" if rtype == "aws_kms_key" else "resource-policy"
            yield from _statements(stack, res, kind, v.get("policy"))
        elif rtype.startswith("google_") and rtype.endswith(("_iam_member", "_iam_binding")):
            scope = _scope(stack, res)
            members = _list(v.get("members") or []) if rtype.endswith("_binding") else [v.get("member", "")]
            condition = json.dumps(v["condition"], sort_keys=True) if v.get("condition") else ""
            for member in members:
                yield Grant(
                    stack.name, "iam-binding", res.path, "Allow", _readable(stack, str(member)), str(v.get("role", "")), scope, condition
                )
        elif rtype.startswith("google_") and rtype.endswith("_iam_policy"):
            scope = _scope(stack, res)
            for binding in _list((_doc(v.get("policy_data")) or {}).get("bindings", [])):
                for member in _list(binding.get("members", [])):
                    yield Grant(
                        stack.name, "iam-binding", res.path, "Allow", _readable(stack, str(member)), str(binding.get("role", "")), scope
                    )


def _scope(stack: Stack, res: Resource) -> str:
    """What a GCP binding applies to: ``project mlp-dev``, ``repository ${.../repository.name}``."""
    for key in ("repository", "crypto_key_id", "bucket", "service_account_id", "secret_id", "topic", "subscription", "project"):
        if res.values.get(key):
            return f"{key} {_readable(stack, str(res.values[key]))}"
    return res.type


def delta(base: Iterable[Grant], head: Iterable[Grant]) -> list[PermissionChange]:
    """Grants added and removed; an added grant carries the reasons it broadens access."""
    b = {g.key(): g for g in base}
    h = {g.key(): g for g in head}
    known_principals = {(g.kind, g.owner, g.principal) for g in b.values()}
    changes = []
    for key, g in h.items():
        if key in b:
            continue
        changes.append(PermissionChange("added", g, _flags(g, b.values(), known_principals)))
    for key, g in b.items():
        if key not in h:
            changes.append(PermissionChange("removed", g, ("a Deny was removed",) if g.effect == "Deny" else ()))
    return changes


def _flags(g: Grant, base: Iterable[Grant], known_principals: set[tuple[str, str, str]]) -> tuple[str, ...]:
    if g.effect != "Allow":
        return ()
    flags = []
    if "*" in g.action and not g.action.startswith("NOT "):
        flags.append("wildcard action")
    if g.kind == "identity-policy" and (g.resource == "*" or g.resource.endswith(":*") or g.resource.startswith("NOT ")):
        flags.append("wildcard resource")
    if g.principal in PUBLIC or g.principal.endswith(":*"):
        flags.append("public")
    elif (
        g.kind in ("trust-policy", "key-policy", "resource-policy", "iam-binding")
        and (g.kind, g.owner, g.principal) not in known_principals
    ):
        flags.append("new principal")
    if g.kind == "trust-policy":
        flags.append("trust policy admits more")
    if g.kind == "managed-policy":
        flags.append("admin policy attached" if g.action.endswith(ADMIN_POLICIES) else "managed policy attached")
    if g.kind == "iam-binding" and (g.action in PRIMITIVE_ROLES or g.action.endswith(".admin")):
        flags.append("admin role")
    if not g.condition and any(
        o.condition and (o.kind, o.owner, o.principal, o.action, o.resource) == (g.kind, g.owner, g.principal, g.action, g.resource)
        for o in base
    ):
        flags.append("condition removed")
    return tuple(flags)
