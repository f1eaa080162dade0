"""The policy gate: checkov and our own rules (:mod:`infra.policy.rules`) over every synthesized
stack of the chosen environments.

Every failed check becomes a :class:`Finding`. A finding is then *not applicable* when
``not_applicable.yaml`` says the check cannot apply to that kind of resource, *skipped* when the
environment file declares it under ``policy.skips`` with a reason, and *failed* otherwise. A check
suppressed inside the synthesized JSON without a declaration, and a declared skip that matches
nothing, are failures too: every exception is visible in the environment file and in every report.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from environments.loader import ENV_DIR, Environments, loaded
from environments.schema import Environment, PolicySkip
from infra.errors import InfraError
from infra.markdown import rel_path
from infra.policy import checkov
from infra.policy.rules import RULES, Context, evaluate
from infra.synthesized.reader import Resource, Stack, stacks_by_env

NOT_APPLICABLE_FILE = Path(__file__).with_name("not_applicable.yaml")
Status = Literal["failed", "skipped", "not_applicable"]


class NotApplicable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    check: str
    resource_type: str
    when: dict[str, Any] = {}
    reason: str = Field(min_length=15)
    source: str = Field(min_length=10)


def not_applicable_entries(path: Path = NOT_APPLICABLE_FILE) -> list[NotApplicable]:
    return [NotApplicable.model_validate(e) for e in yaml.safe_load(path.read_text()) or []]


@dataclass(frozen=True)
class Finding:
    env: str
    stack: str
    check: str
    source: Literal["checkov", "rule", "policy"]
    title: str
    severity: str
    address: str
    path: str  # construct path inside the stack (``aws-eks/cluster``), what skips match
    message: str
    fix: str
    status: Status = "failed"
    reason: str = ""
    file: str = ""
    line: int = 0


@dataclass
class StackResult:
    env: str
    stack: str
    file: str
    checkov_passed: int = 0
    checkov_failed: int = 0  # as reported, before skips
    rules_passed: int = 0
    rules_failed: int = 0


@dataclass
class PolicyReport:
    stacks: list[StackResult]
    findings: list[Finding]
    skips: dict[str, list[PolicySkip]]  # declared, by environment
    checkov_version: str = ""
    rules: list[dict[str, str]] = field(default_factory=list)

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "failed"]

    @property
    def suppressed(self) -> list[Finding]:
        return [f for f in self.findings if f.status != "failed"]

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checkov_version": self.checkov_version,
            "stacks": [asdict(s) for s in self.stacks],
            "failed": [asdict(f) for f in self.failures],
            "suppressed": [asdict(f) for f in self.suppressed],
            "declared_skips": {env: [s.model_dump() for s in skips] for env, skips in self.skips.items()},
            "rules": self.rules,
        }


def run(
    outdir: Path, environments: Environments | Path = ENV_DIR, names: Iterable[str] | None = None, *, run_checkov: bool = True
) -> PolicyReport:
    """The policy report of the named environments (default: all) from ``outdir``."""
    envs = loaded(environments)
    wanted = list(names) if names else list(envs)
    unknown = [n for n in wanted if n not in envs]
    if unknown:
        raise InfraError(f"no environment named {', '.join(unknown)}; one of {', '.join(envs)}")
    by_env = stacks_by_env(outdir, wanted)
    reports = {}
    if run_checkov:
        scanned = checkov.scan([s.path.parent for stacks in by_env.values() for s in stacks])
        reports = {r.stack: r for r in scanned}
    not_applicable = not_applicable_entries()
    findings: list[Finding] = []
    results: list[StackResult] = []
    for name, stacks in by_env.items():
        env = envs[name]
        ctx = Context(env=env, stacks=stacks, promoted=name in envs.promotion_targets, production=env.requires_approval)
        env_findings, env_results = _environment(ctx, reports, not_applicable, envs.file_of(name))
        findings += env_findings
        results += env_results
    version = next((r.version for r in reports.values() if r.version), "")
    rules = [{"id": r.id, "title": r.title, "severity": r.severity, "fix": r.fix} for r in RULES.values()]
    return PolicyReport(results, findings, {n: list(envs[n].policy.skips) for n in wanted}, version, rules)


def _environment(
    ctx: Context, reports: dict[str, checkov.CheckovReport], not_applicable: list[NotApplicable], env_file: Path
) -> tuple[list[Finding], list[StackResult]]:
    env = ctx.env
    results = {s.name: StackResult(env.name, s.name, rel_path(s.path)) for s in ctx.stacks}
    stacks = {s.name: s for s in ctx.stacks}
    raw: list[Finding] = []
    inline_skips: list[Finding] = []
    for stack in ctx.stacks:
        report = reports.get(stack.name)
        if report is None:
            continue
        results[stack.name].checkov_passed = report.passed
        results[stack.name].checkov_failed = len(report.failed)
        raw += [_checkov_finding(env, stack, failed) for failed in report.failed]
        inline_skips += [_checkov_finding(env, stack, skipped) for skipped in report.skipped]
    for rule, outcome in evaluate(ctx):
        counts = results[outcome.stack]
        if outcome.passed:
            counts.rules_passed += 1
            continue
        counts.rules_failed += 1
        stack = stacks[outcome.stack]
        raw.append(
            Finding(
                env=env.name,
                stack=stack.name,
                check=rule.id,
                source="rule",
                title=rule.title,
                severity=rule.severity,
                address=outcome.resource.address if outcome.resource else "-",
                path=_path_in_stack(stack, outcome.resource),
                message=outcome.message,
                fix=rule.fix,
                file=rel_path(stack.path),
                line=_line_of(stack, outcome.resource.name) if outcome.resource else 1,
            )
        )
    used: set[int] = set()
    findings = []
    for finding in raw:
        na = _not_applicable(finding, stacks[finding.stack], not_applicable)
        if na is not None:
            findings.append(replace(finding, status="not_applicable", reason=f"{na.reason} ({na.source})"))
            continue
        skip = _declared(finding, env.policy.skips, used)
        findings.append(replace(finding, status="skipped", reason=skip.reason) if skip else finding)
    for finding in inline_skips:
        skip = _declared(finding, env.policy.skips, used)
        if skip:
            findings.append(replace(finding, status="skipped", reason=skip.reason))
        else:
            findings.append(
                replace(
                    finding,
                    message=f"suppressed inside the synthesized JSON (checkov:skip) but not declared in {env_file}: policy.skips",
                    fix=f"declare the skip with its reason in {env_file} (policy.skips), or remove the suppression",
                )
            )
    ran_checkov = bool(reports)
    for i, skip in enumerate(env.policy.skips):
        if i in used or (skip.check.startswith("CKV") and not ran_checkov):
            continue
        findings.append(
            Finding(
                env=env.name,
                stack=env.name,
                check=skip.check,
                source="policy",
                title="a declared skip matches no failing check",
                severity="LOW",
                address="-",
                path=", ".join(skip.resources) or "*",
                message=f"{env_file}: policy.skips[{i}] ({skip.check}) matches nothing; the check passes or the resources moved",
                fix=f"remove policy.skips[{i}] from {env_file}",
                file=rel_path(env_file),
                line=1,
            )
        )
    return findings, list(results.values())


def _declared(finding: Finding, skips: list[PolicySkip], used: set[int]) -> PolicySkip | None:
    for i, skip in enumerate(skips):
        if skip.check != finding.check:
            continue
        if not skip.resources or any(fnmatch.fnmatchcase(finding.path, glob) for glob in skip.resources):
            used.add(i)
            return skip
    return None


def _not_applicable(finding: Finding, stack: Stack, entries: list[NotApplicable]) -> NotApplicable | None:
    if "." not in finding.address:
        return None
    rtype, name = finding.address.split(".", 1)
    values = stack.raw.get("resource", {}).get(rtype, {}).get(name)
    if values is None:
        return None
    for entry in entries:
        if entry.check == finding.check and entry.resource_type == rtype and all(values.get(k) == v for k, v in entry.when.items()):
            return entry
    return None


def _checkov_finding(env: Environment, stack: Stack, result: checkov.CheckovResult) -> Finding:
    resource = _checkov_resource(stack, result.resource)
    return Finding(
        env=env.name,
        stack=stack.name,
        check=result.check_id,
        source="checkov",
        title=result.name,
        severity=result.severity or "-",
        address=resource.address if resource else result.resource,
        path=_path_in_stack(stack, resource) if resource else result.resource,
        message=result.name,
        fix=result.guideline or f"see checkov's {result.check_id}",
        file=rel_path(stack.path),
        line=result.lines[0] or 1,
    )


def _checkov_resource(stack: Stack, checkov_id: str) -> Resource | None:
    """checkov names a resource ``resource.<name>``, a data source ``data.<name>`` and, in graph
    checks, ``<type>.<name>``; cdktf names are unique within a stack."""
    kind, _, name = checkov_id.partition(".")
    blocks = [("resource", stack.raw.get("resource", {})), ("data", stack.raw.get("data", {}))]
    for block_kind, by_type in blocks:
        for rtype, by_name in by_type.items():
            if kind == rtype and name in by_name:
                return Resource(rtype, name, by_name[name])
            if kind == block_kind and name in by_name:
                prefix = "data." if block_kind == "data" else ""
                return Resource(prefix + rtype, name, by_name[name])
    return None


def _path_in_stack(stack: Stack, resource: Resource | None) -> str:
    if resource is None:
        return "-"
    return resource.path.removeprefix(f"{stack.name}/")


def _line_of(stack: Stack, name: str) -> int:
    """The line of ``"<name>": {`` in the stack's file (cdktf names are unique), for SARIF regions."""
    return _block_lines(stack.path, stack.path.stat().st_mtime_ns).get(name, 1)


@cache
def _block_lines(path: Path, mtime_ns: int) -> dict[str, int]:
    """Line of each ``"<key>": {`` in a synthesized file, read once per file version."""
    pattern = re.compile(r'^\s*"([^"]+)":\s*\{')
    lines: dict[str, int] = {}
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = pattern.match(line)
        if match:
            lines.setdefault(match.group(1), i)
    return lines
