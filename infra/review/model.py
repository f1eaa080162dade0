"""What a review adds to the resource changes: permission changes (grants added or removed, with
why an added one broadens access) and the changes outside the resources (backend, providers, the
environment file)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Grant:
    """One permission as a row: who (principal) may do what (action) on what (resource)."""

    stack: str
    kind: str  # identity-policy | trust-policy | key-policy | managed-policy | function-url | iam-binding
    owner: str  # the construct path of the resource that grants it
    effect: str  # Allow | Deny
    principal: str
    action: str
    resource: str
    condition: str = ""

    def key(self) -> tuple[str, ...]:
        return (self.stack, self.kind, self.owner, self.effect, self.principal, self.action, self.resource, self.condition)


@dataclass(frozen=True)
class PermissionChange:
    change: Literal["added", "removed"]
    grant: Grant
    flags: tuple[str, ...] = ()  # why an added grant broadens access

    @property
    def broadening(self) -> bool:
        return bool(self.flags)

    def to_dict(self) -> dict[str, Any]:
        return {"change": self.change, **asdict(self.grant), "flags": list(self.flags)}


@dataclass(frozen=True)
class TopChange:
    """A change outside the resources: backend, provider versions, the environment file."""

    kind: Literal["backend", "provider", "environment"]
    what: str
    before: Any
    after: Any
    blocking: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
