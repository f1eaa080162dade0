"""The preflight report: named checks that pass, fail with what to do, or are skipped with why;
and the sourced facts the checks read (``preflight.yaml``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from infra.markdown import md_cell

DATA = Path(__file__).with_name("preflight.yaml")


@cache
def facts() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DATA.read_text())
    return data


@dataclass
class Check:
    name: str
    subject: str
    ok: bool | None  # None: skipped
    detail: str = ""
    fix: str = ""  # what to do, when it failed


@dataclass
class Report:
    env: str
    checks: list[Check] = field(default_factory=list)

    def ok(self, name: str, subject: str, detail: str = "") -> None:
        self.checks.append(Check(name, subject, True, detail))

    def fail(self, name: str, subject: str, detail: str, fix: str) -> None:
        self.checks.append(Check(name, subject, False, detail, fix))

    def skip(self, name: str, subject: str, why: str) -> None:
        self.checks.append(Check(name, subject, None, why))

    def run(self, name: str, subject: str, check: Callable[[], None], fix: str) -> None:
        """``check()``; an API error in it fails the check with the error as the detail."""
        try:
            check()
        except Exception as exc:  # botocore, Google and GitHub errors alike: report, do not stop
            if not _api_error(exc):
                raise
            self.fail(name, subject, f"{type(exc).__name__}: {exc}", fix)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.ok is False]

    @property
    def passed(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        counts = {k: sum(1 for c in self.checks if c.ok is v) for k, v in (("passed", True), ("failed", False), ("skipped", None))}
        verdict = "ready for the first apply" if self.passed else "not ready: fix what failed, then run preflight again"
        return f"preflight {self.env}: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped; {verdict}"

    def to_dict(self) -> dict[str, Any]:
        return {"env": self.env, "passed": self.passed, "checks": [asdict(c) for c in self.checks], "summary": self.summary()}

    def markdown(self) -> str:
        mark = {True: "✅", False: "❌", None: "➖"}
        lines = [f"## preflight {self.env}", "", "| | check | subject | detail | what to do |", "| --- | --- | --- | --- | --- |"]
        for c in self.checks:
            lines.append(f"| {mark[c.ok]} | `{c.name}` | {md_cell(c.subject)} | {md_cell(c.detail)} | {md_cell(c.fix)} |")
        return "\n".join([*lines, "", self.summary()])


def _api_error(exc: Exception) -> bool:
    from infra.clouds.gcp import GoogleApiError
    from infra.clouds.github import GitHubError

    if isinstance(exc, GoogleApiError | GitHubError):
        return True
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, ClientError | BotoCoreError)
