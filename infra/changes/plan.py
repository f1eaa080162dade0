"""Resource changes from a real plan (``terraform show -json PLAN``): the plan's own actions,
``action_reason`` and ``replace_paths`` instead of the offline prediction. The same reader turns a
refresh-only plan's ``resource_drift`` into drift findings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infra.changes.diff import has_capacity
from infra.changes.model import AttrChange, ResourceChange
from infra.changes.table import Table
from infra.errors import InfraError
from infra.synthesized.paths import flatten, path_text
from infra.synthesized.reader import Resource, Stack
from infra.synthesized.secrets import MASK, is_sensitive

UNKNOWN = "(known after apply)"
REASONS = {
    "replace_because_cannot_update": "the provider cannot update {paths} in place",
    "replace_because_tainted": "the resource is tainted",
    "replace_by_request": "replacement was requested (-replace)",
    "replace_by_triggers": "replace_triggered_by / triggers_replace changed",
    "delete_because_no_resource_config": "the configuration no longer declares it",
    "delete_because_no_module": "its module was removed",
    "delete_because_wrong_repetition": "count/for_each changed its repetition",
    "delete_because_count_index": "count no longer includes this index",
    "delete_because_each_key": "for_each no longer includes this key",
    "delete_because_no_move_target": "its moved block's target is missing",
}


class PlanError(InfraError):
    """A plan file that is not ``terraform show -json`` output."""


def load_plan(path: Path) -> dict[str, Any]:
    try:
        plan = json.loads(path.read_text())
    except FileNotFoundError:
        raise PlanError(f"{path}: no such plan file") from None
    except ValueError as exc:
        raise PlanError(f"{path}: not JSON ({exc}); pass `terraform show -json PLAN` output") from None
    if not isinstance(plan, dict) or "format_version" not in plan or not ("resource_changes" in plan or "planned_values" in plan):
        raise PlanError(f"{path}: format_version/resource_changes missing; pass `terraform show -json PLAN` output")
    return plan


def _marked(tree: Any) -> set[str]:
    """Leaf paths marked ``true`` in a plan's ``after_unknown`` / ``*_sensitive`` tree."""
    if tree is True:
        return {""}
    return {p for p, v in flatten(tree).items() if v is True} if isinstance(tree, (dict, list)) else set()


def _under(path: str, marked: set[str]) -> bool:
    return any(m == "" or path == m or path.startswith(m + ".") or path.startswith(m + "[") for m in marked)


def _attrs(change: dict[str, Any], replace_paths: list[str]) -> list[AttrChange]:
    before = change.get("before") or {}
    after = change.get("after") or {}
    b, a = flatten(before), flatten(after)
    unknown = _marked(change.get("after_unknown"))
    secret = _marked(change.get("before_sensitive")) | _marked(change.get("after_sensitive"))
    for path in unknown:
        a.setdefault(path, UNKNOWN)
    out = []
    for path in sorted(set(b) | set(a)):
        bv, av = b.get(path), a.get(path)
        if _under(path, unknown):
            av = UNKNOWN
        if bv == av or (bv is None and av in ([], {})):
            continue
        masked = _under(path, secret) or is_sensitive(path, bv) or is_sensitive(path, av)
        forces = "plan" if _under(path, set(replace_paths)) else ""
        out.append(AttrChange(path, MASK if masked and bv is not None else bv, MASK if masked and av is not None else av, forces, masked))
    return out


def changes_from_plan(plan: dict[str, Any], stack: Stack | None, table: Table, *, drift: bool = False) -> list[ResourceChange]:
    """The plan's resource changes (or, with ``drift``, its ``resource_drift``) as review changes."""
    by_addr = {r.address: r for r in stack.resources} if stack else {}
    stack_name = stack.name if stack else ""
    entries = plan.get("resource_drift" if drift else "resource_changes") or []
    out = []
    for rc in entries:
        if rc.get("mode", "managed") != "managed":
            continue
        change = rc.get("change") or {}
        actions = change.get("actions") or ["no-op"]
        destroy_first = False
        previous = rc.get("previous_address")
        if actions == ["no-op"] or actions == ["read"]:
            if not previous:
                continue
            action = "move"
        elif "delete" in actions and "create" in actions:
            action = "replace"
            destroy_first = actions.index("delete") < actions.index("create")  # ["delete", "create"]: no create_before_destroy
        elif actions == ["create"]:
            action = "create"
        elif actions == ["delete"]:
            action = "delete"
        else:
            action = "update"
        address = rc.get("address", "")
        rtype = rc.get("type", address.split(".")[0])
        rule = table.rule(rtype)
        replace_paths = [path_text(p) for p in change.get("replace_paths") or []]
        attrs = [] if action in ("delete", "move") else _attrs(change, replace_paths)
        declared = by_addr.get(address)
        before_res = Resource(rtype, address.split(".", 1)[-1], change.get("before") or {})
        reasons = []
        reason = rc.get("action_reason")
        if reason:
            reasons.append(REASONS.get(reason, reason).format(paths=", ".join(f"`{p}`" for p in replace_paths) or "an attribute"))
        elif action == "replace" and replace_paths:
            reasons.append("planned because of " + ", ".join(f"`{p}`" for p in replace_paths))
        if drift:
            reasons.append("changed outside Terraform" if action != "delete" else "deleted outside Terraform")
        if action == "replace" and destroy_first and rule and rule.destroys_first_when_set:
            # capacity (a node group, a node pool) is gone until the new one is ready
            reasons.append(
                "the plan destroys it before it creates the new one: it is gone until the new one is ready, an outage of its nodes"
            )
        out.append(
            ResourceChange(
                stack_name,
                address,
                rtype,
                declared.path if declared else address,
                action,  # type: ignore[arg-type]
                source="plan",
                attrs=attrs,
                moved_from=previous,
                reasons=reasons,
                stateful=rule.stateful if rule else "never",
                has_capacity=has_capacity(before_res),
                citation="terraform plan",
            )
        )
    return out


def output_changes(plan: dict[str, Any]) -> dict[str, list[str]]:
    """Outputs the plan changes: name -> actions."""
    return {name: c.get("actions", []) for name, c in (plan.get("output_changes") or {}).items() if c.get("actions") != ["no-op"]}
