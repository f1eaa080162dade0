"""What bootstrap reports: one step per setting (created, updated, unchanged, kept), findings that
need a person (an environment file that names the wrong provider), and the refusal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from infra.errors import EXIT_FINDINGS, InfraError

Status = Literal["created", "updated", "unchanged", "kept"]
T = TypeVar("T")


class BootstrapRefused(InfraError):
    """Bootstrapping would have to weaken or remove an existing setting; nothing was written."""

    exit_code = EXIT_FINDINGS


@dataclass
class Step:
    what: str
    status: Status
    detail: str = ""


@dataclass
class Result:
    env: str
    steps: list[Step] = field(default_factory=list)
    # what bootstrap cannot fix and a person must (the CLI exits 1 when there is any)
    findings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(s.status in ("created", "updated") for s in self.steps)

    def add(self, what: str, status: Status, detail: str = "") -> None:
        self.steps.append(Step(what, status, detail))

    def to_dict(self) -> dict[str, Any]:
        return {"env": self.env, "changed": self.changed, "steps": [s.__dict__ for s in self.steps], "findings": self.findings}


def refuse_unless(ok: bool, message: str) -> None:
    if not ok:
        raise BootstrapRefused(message)


def first(items: list[T], pred: Callable[[T], bool]) -> T | None:
    return next((i for i in items if pred(i)), None)
