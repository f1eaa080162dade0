"""The offline diff of two synthesized stacks, by resource address.

* created / destroyed / changed resources, with every changed attribute as a path (nested blocks
  as ``a.b[0].c``; a JSON or YAML document held in a string is stepped into with ``{}``);
* values that look sensitive are masked, never printed;
* a destroyed resource and a created one of the same type whose attributes are equal (references
  to other moved resources followed) are one resource that *moved*: a renamed construct id;
* a changed attribute listed in the replacement table makes the change a *likely replacement*,
  and so does a replacement-forcing attribute that refers to a computed attribute (an id, an ARN)
  of a resource being replaced.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any

from infra.changes.model import AttrChange, ResourceChange
from infra.changes.table import Table, TypeRule
from infra.synthesized.paths import IGNORED, flatten
from infra.synthesized.reader import Resource, Stack
from infra.synthesized.secrets import MASK, is_sensitive

_ADDRESS = re.compile(r"(?<![\w.-])([a-z][a-z0-9_]*\.[A-Za-z0-9_-]+)")
_REF = re.compile(r"\$\{([a-z][a-z0-9_]*)\.([A-Za-z0-9_-]+)\.([a-z0-9_]+)")


def _canonical(values: dict[str, Any], renames: dict[str, str]) -> str:
    text = json.dumps({k: v for k, v in values.items() if k not in IGNORED}, sort_keys=True)
    if renames:
        text = _ADDRESS.sub(lambda m: renames.get(m.group(1), m.group(1)), text)
    return text


def find_moves(removed: dict[str, Resource], added: dict[str, Resource]) -> dict[str, str]:
    """Base address -> head address for resources whose only change is their address.

    Matching repeats until nothing new matches, so that a renamed construct whose resources refer
    to each other (a node group and its launch template) moves as a whole. A removed resource with
    several equal candidates is left alone: the review cannot tell which one it became.
    """
    moves: dict[str, str] = {}
    head_keys = {addr: (r.type, _canonical(r.values, {})) for addr, r in added.items()}
    while True:
        taken = set(moves.values())
        by_key: dict[tuple[str, str], list[str]] = defaultdict(list)
        for addr, key in head_keys.items():
            if addr not in taken:
                by_key[key].append(addr)
        found = 0
        for addr, res in removed.items():
            if addr in moves:
                continue
            key = (res.type, _canonical(res.values, moves))
            candidates = by_key.get(key, [])
            if len(candidates) == 1:
                moves[addr] = candidates[0]
                by_key[key] = []
                found += 1
        if not found:
            return moves


def _attr_changes(before: dict[str, Any], after: dict[str, Any], rule: TypeRule | None) -> list[AttrChange]:
    b, a = flatten(before), flatten(after)
    changes = []
    for path in sorted(set(b) | set(a)):
        bv, av = b.get(path), a.get(path)
        if bv == av:
            continue
        secret = is_sensitive(path, bv) or is_sensitive(path, av)
        changes.append(
            AttrChange(
                path,
                MASK if secret and bv is not None else bv,
                MASK if secret and av is not None else av,
                rule.forcing(path) if rule else "",
                secret,
            )
        )
    return changes


def has_capacity(res: Resource) -> bool:
    """A node pool that keeps nodes running (a minimum or fixed count above zero)."""
    for dotted in (
        "scaling_config.min_size",
        "scaling_config.desired_size",
        "autoscaling.min_node_count",
        "autoscaling.total_min_node_count",
        "node_count",
    ):
        value = res.get(dotted)
        if isinstance(value, (int, float)) and value > 0:
            return True
    return bool(res.get("initial_node_count") and not res.get("autoscaling"))


def diff_stacks(base: Stack | None, head: Stack | None, table: Table) -> list[ResourceChange]:
    """Every resource change between two versions of one stack (either may be missing)."""
    either = head or base
    stack_name = either.name if either else ""
    b = {r.address: r for r in base.resources} if base else {}
    h = {r.address: r for r in head.resources} if head else {}
    removed = {k: v for k, v in b.items() if k not in h}
    added = {k: v for k, v in h.items() if k not in b}
    moves = find_moves(removed, added)
    moved_to = set(moves.values())
    changes: list[ResourceChange] = []

    def change(res: Resource, action: str, **kw: Any) -> ResourceChange:
        rule = table.rule(res.type)
        return ResourceChange(
            stack_name,
            res.address,
            res.type,
            res.path,
            action,  # type: ignore[arg-type]
            stateful=rule.stateful if rule else "never",
            **kw,
        )

    for addr, res in added.items():
        if addr not in moved_to:
            changes.append(change(res, "create", attrs=_attr_changes({}, res.values, None)))
    for addr, res in removed.items():
        if addr not in moves:
            changes.append(change(res, "delete", has_capacity=has_capacity(res)))
    for old, new in moves.items():
        changes.append(change(h[new], "move", moved_from=old))
    for addr in h:
        if addr not in b:
            continue
        before = json.loads(_canonical(b[addr].values, moves)) if moves else b[addr].values
        rule = table.rule(h[addr].type)
        attrs = _attr_changes(before, h[addr].values, rule)
        if not attrs:
            continue
        forcing = [a for a in attrs if a.forces == "yes"]
        rc = change(h[addr], "replace" if forcing else "update", attrs=attrs, has_capacity=has_capacity(b[addr]))
        if forcing:
            rc.reasons = [f"`{a.path.split('{}')[0]}` forces replacement" for a in forcing]
            rc.citation = rule.citation if rule else ""
        changes.append(rc)
    _propagate(changes, h, table, stack_name)
    for c in changes:
        if c.action == "replace" and c.address in h:
            note = destroy_first_note(table.rule(c.type), h[c.address])
            if note:
                c.reasons.append(note)
    return changes


def destroy_first_note(rule: TypeRule | None, res: Resource) -> str:
    """Why a replacement is an outage: a resource with a fixed unique name is destroyed first."""
    attr = rule.destroys_first_when_set if rule else ""
    if not attr or not res.get(attr):
        return ""
    return f"destroyed before the new one is created (its fixed `{attr}` cannot exist twice): it is gone until the new one is ready" + (
        ", an outage of its nodes" if rule and rule.stateful == "with_capacity" else ""
    )


def _propagate(changes: list[ResourceChange], head: dict[str, Resource], table: Table, stack: str) -> None:
    """A replacement-forcing attribute that refers to a computed attribute (id, ARN, email) of a
    resource being replaced gets a new value at apply time, so its resource is replaced too."""
    by_addr = {c.address: c for c in changes}
    replaced = {c.address for c in changes if c.action == "replace"}
    frontier = set(replaced)
    while frontier:
        next_frontier: set[str] = set()
        for addr, res in list(head.items()):
            current = by_addr.get(addr)
            if addr in replaced or (current is not None and current.action not in ("update", "move")):
                continue
            rule = table.rule(res.type)
            if rule is None:
                continue
            for path, value in flatten(res.values).items():
                if not isinstance(value, str) or rule.forcing(path) != "yes":
                    continue
                for rtype, name, attr in _REF.findall(value):
                    target = f"{rtype}.{name}"
                    if target in frontier and attr not in head[target].values:
                        reason = f"`{path}` refers to `{head[target].path}.{attr}`, which changes when that resource is replaced"
                        if current is None:
                            current = ResourceChange(
                                stack, res.address, res.type, res.path, "replace", stateful=rule.stateful, has_capacity=has_capacity(res)
                            )
                            changes.append(current)
                            by_addr[addr] = current
                        current.action = "replace"
                        current.reasons.append(reason)
                        current.citation = rule.citation
                        replaced.add(addr)
                        next_frontier.add(addr)
                        break
                if addr in next_frontier:
                    break
        frontier = next_frontier
