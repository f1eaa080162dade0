"""The policy report for people (rich tables, Markdown for pull requests) and machines (JSON, SARIF
2.1.0 for GitHub code scanning). Every declared skip and not-applicable check appears in each."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from infra.markdown import MARKDOWN_LIMIT, md_cell
from infra.policy.gate import Finding, PolicyReport
from infra.tables import Table, styled

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_LEVEL = {"CRITICAL": "error", "HIGH": "error", "MEDIUM": "warning", "LOW": "note"}
STATUS_LABEL = {"skipped": "skipped (declared)", "not_applicable": "not applicable"}


def _where(f: Finding) -> str:
    return f"{f.stack}: {f.path}" if f.path not in ("-", "") else f.stack


def exception_groups(report: PolicyReport) -> list[tuple[str, str, str, list[str]]]:
    """``(check, status, reason, [where…])``: one row per exception, however many resources it covers."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for f in report.suppressed:
        groups.setdefault((f.check, f.status, f.reason), []).append(f"{f.env}/{_where(f)}" if f.stack != f.env else _where(f))
    return [(check, status, reason, where) for (check, status, reason), where in groups.items()]


def _counts(report: PolicyReport, stack: str) -> tuple[int, int]:
    failed = sum(1 for f in report.failures if f.stack == stack)
    excepted = sum(1 for f in report.suppressed if f.stack == stack)
    return failed, excepted


def tables(report: PolicyReport) -> list[Table]:
    summary = Table(
        "environment",
        "stack",
        "checkov passed",
        "checkov failed",
        "rules passed",
        "rules failed",
        "excepted",
        "failures",
        title=f"policy (checkov {report.checkov_version or 'not run'} + {len(report.rules)} rules)",
    )
    for s in report.stacks:
        failed, excepted = _counts(report, s.stack)
        summary.add_row(
            s.env,
            s.stack,
            str(s.checkov_passed),
            str(s.checkov_failed),
            str(s.rules_passed),
            str(s.rules_failed),
            str(excepted),
            styled(str(failed), "red") if failed else styled("0", "green"),
        )
    out = [summary]
    if report.failures:
        failures = Table("check", "severity", "where", "what", "fix", title="failures", show_lines=True)
        for f in report.failures:
            failures.add_row(f.check, f.severity, _where(f), f.message, f.fix)
        out.append(failures)
    if report.suppressed:
        excepted_table = Table(
            "check", "status", "where", "reason", title="exceptions (declared skips and checks that do not apply)", show_lines=True
        )
        for check, status, reason, where in exception_groups(report):
            excepted_table.add_row(check, STATUS_LABEL[status], "\n".join(where), reason)
        out.append(excepted_table)
    return out


def markdown(report: PolicyReport, *, limit: int = MARKDOWN_LIMIT) -> str:
    failures = report.failures
    head = "### ✅ Policy: passed" if report.ok else f"### ❌ Policy: {len(failures)} failure{'s' if len(failures) != 1 else ''}"
    lines = [
        head,
        "",
        f"checkov {report.checkov_version or '(not run)'} and {len(report.rules)} rules of ours (MLP0nn) over every synthesized stack.",
        "",
        "| environment | stack | checkov passed | checkov failed | rules passed | rules failed | excepted | failures |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in report.stacks:
        failed, excepted = _counts(report, s.stack)
        mark = f"**{failed}**" if failed else "0"
        lines.append(
            f"| {s.env} | {s.stack} | {s.checkov_passed} | {s.checkov_failed} | {s.rules_passed} | {s.rules_failed} | {excepted} | {mark} |"
        )
    exceptions = [
        "",
        "#### Exceptions",
        "",
        "| check | status | where | reason |",
        "|---|---|---|---|",
        *[
            f"| {check} | {STATUS_LABEL[status]} | {'<br>'.join(f'`{md_cell(w)}`' for w in where)} | {md_cell(reason)} |"
            for check, status, reason, where in exception_groups(report)
        ],
    ]
    if not report.suppressed:
        exceptions = ["", "No skips and no checks that do not apply."]
    body = "\n".join(lines)
    tail = "\n".join(exceptions)
    if failures:
        rows = ["", "#### Failures", "", "| check | severity | where | what | fix |", "|---|---|---|---|---|"]
        text = body + "\n".join(rows)
        budget = limit - len(text) - len(tail) - 200
        shown = 0
        for f in failures:
            row = f"\n| {f.check} | {f.severity} | `{md_cell(_where(f))}` | {md_cell(f.message)} | {md_cell(f.fix)} |"
            if len(row) > budget:
                break
            text += row
            budget -= len(row)
            shown += 1
        if shown < len(failures):
            text += f"\n\n{len(failures) - shown} more failures left out to stay under {limit:,} characters; the JSON report has them all."
        body = text
    return body + "\n" + tail + "\n"


def to_json(report: PolicyReport) -> str:
    return json.dumps(report.to_dict(), indent=2)


def sarif(report: PolicyReport) -> dict[str, Any]:
    """SARIF 2.1.0: failures as results; declared skips and not-applicable checks as suppressed results."""
    rules: dict[str, dict[str, Any]] = {
        r["id"]: {
            "id": r["id"],
            "name": r["id"],
            "shortDescription": {"text": r["title"]},
            "help": {"text": f"Fix: {r['fix']}"},
            "properties": {"security-severity": _security_severity(r["severity"]), "tags": ["ml-platform-policy"]},
            "defaultConfiguration": {"level": SARIF_LEVEL[r["severity"]]},
        }
        for r in report.rules
    }
    results = []
    for f in report.findings:
        if f.check not in rules:
            rules[f.check] = {
                "id": f.check,
                "name": f.check,
                "shortDescription": {"text": f.title[:1000] or f.check},
                "help": {"text": f.fix},
                "properties": {"tags": [f.source]},
            }
        result: dict[str, Any] = {
            "ruleId": f.check,
            "level": SARIF_LEVEL.get(f.severity, "error"),
            "message": {"text": f"{f.env}/{_where(f)}: {f.message}. Fix: {f.fix}"},
            "locations": [
                {
                    "physicalLocation": {"artifactLocation": {"uri": f.file}, "region": {"startLine": max(f.line, 1)}},
                    "logicalLocations": [{"fullyQualifiedName": f"{f.stack}/{f.path}", "kind": "resource"}],
                }
            ],
            "partialFingerprints": {"mlpFinding/v1": hashlib.sha256(f"{f.env}|{f.check}|{f.path}".encode()).hexdigest()[:32]},
        }
        if f.status != "failed":
            result["suppressions"] = [{"kind": "external", "status": "accepted", "justification": f"{STATUS_LABEL[f.status]}: {f.reason}"}]
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "infra policy",
                        "informationUri": "https://www.checkov.io/",
                        "version": report.checkov_version or "0",
                        "rules": sorted(rules.values(), key=lambda r: r["id"]),
                    }
                },
                "results": results,
            }
        ],
    }


def _security_severity(severity: str) -> str:
    return {"CRITICAL": "9.5", "HIGH": "8.0", "MEDIUM": "5.5", "LOW": "2.0"}.get(severity, "5.0")
