"""A resource change and its attribute changes: what an offline diff or a real plan says a change
does to one resource."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Action = Literal["create", "delete", "update", "replace", "move"]
Source = Literal["offline", "plan"]
ACTION_ORDER: dict[str, int] = {"replace": 0, "delete": 1, "create": 2, "update": 3, "move": 4}


@dataclass(frozen=True)
class AttrChange:
    path: str  # dotted, list indices kept, ``{}`` steps into a JSON/YAML document held in a string
    before: Any  # None: absent on that side
    after: Any
    forces: str = ""  # "" | "yes" | "if <condition>" (the replacement table), or "plan" (replace_paths)
    sensitive: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ResourceChange:
    stack: str
    address: str  # the head's address (the base's for a delete)
    type: str
    path: str  # construct path inside the stack
    action: Action
    source: Source = "offline"
    attrs: list[AttrChange] = field(default_factory=list)
    moved_from: str | None = None
    reasons: list[str] = field(default_factory=list)  # why it is replaced (table entry, reference, plan)
    stateful: str = "never"  # always | with_capacity | never (from the replacement table)
    has_capacity: bool = False
    blocking: str = ""  # why this change blocks the review ("" = it does not)
    citation: str = ""  # the provider documentation behind a predicted replacement

    @property
    def label(self) -> str:
        if self.action == "replace":
            return "replacement (planned)" if self.source == "plan" else "likely replacement"
        if self.action == "move":
            return "moved"
        return {"create": "create", "delete": "destroy", "update": "update in place"}[self.action]

    def moved_block(self) -> str:
        return f"moved {{\n  from = {self.moved_from}\n  to   = {self.address}\n}}" if self.moved_from else ""

    def move_call(self) -> str:
        return f'<new construct>.move_from_id("{self.moved_from}")' if self.moved_from else ""

    def to_dict(self) -> dict[str, Any]:
        data = {
            "stack": self.stack,
            "address": self.address,
            "type": self.type,
            "path": self.path,
            "action": self.action,
            "label": self.label,
            "source": self.source,
            "moved_from": self.moved_from,
            "reasons": self.reasons,
            "stateful": self.stateful,
            "blocking": self.blocking,
            "citation": self.citation,
            "attributes": [a.to_dict() for a in self.attrs],
        }
        if self.moved_from:
            data["moved_block"] = self.moved_block()
        return data
