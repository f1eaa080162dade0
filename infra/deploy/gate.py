"""``infra deploy plan`` and ``infra deploy apply``: apply what was reviewed, and nothing else.

The review of a pull request is an untrusted claim: its run executed the pull request's code (see
:mod:`infra.deploy.provenance`). What is applied is always a plan made after the merge, by the
merged code, with the deploy credentials; the review can only stop it.

``infra deploy plan ENV`` (the post-merge plan job, read-only role, no approval yet):

1. the synth hash of ``ENV`` (all its stacks' ``cdk.tf.json``) must equal the one the review
   recorded, or the code deployed is not the code reviewed (exit 3);
2. per stack in apply order (``<env>-registries``, ``<env>``, ``<env>-workloads``: the manifest's
   dependencies), ``plan -lock=false``; its changes are compared with the review's **value by
   value**: every planned change must be in the review with an action the review covers, and each
   attribute's planned value must equal the reviewed one (all attributes both ways when the review
   had a real plan of that stack; the attributes both sides show when the review was the offline
   prediction). Updates that change only attributes listed in ``volatile.yaml`` do not count. A
   stack after a stack with changes (its inputs are that stack's outputs, not applied yet) or one
   not planned here (``--stack``) is *pending*: it is compared at apply time;
3. the record (JSON, values redacted as in the review) is what the approver of the GitHub
   Environment reads in the job summary, and what the apply job holds the apply to.

``infra deploy apply ENV --planned record.json [--stack S]`` (the apply job, after the approval):
plans each stack again, compares with the record (exactly, both ways) or, for a pending stack, with
the review, and applies the plan it just made, so what is applied is exactly what was compared. In a
pending stack, an update of attributes the configuration sets from the upstream stack's outputs
(``terraform_remote_state``) is expected: no offline review can show those values, the synth hash
binds the reference, and the upstream stack applied under its own compared plan.
Terraform refuses to apply a saved plan whose state moved in between ("Saved plan is stale").

No binary plan leaves the runner: a plan file holds the prior state and every value in clear
(hashicorp/terraform internal/plans/planfile, writer.go), and it is deleted after use.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

from infra import providers
from infra.changes.model import ResourceChange
from infra.changes.plan import UNKNOWN, changes_from_plan
from infra.changes.table import load_table
from infra.engine import run_checked
from infra.errors import EXIT_NEEDS_APPROVAL, InfraError
from infra.synthesized.digest import synth_hash
from infra.synthesized.reader import Stack, apply_order

VOLATILE_FILE = Path(__file__).with_name("volatile.yaml")
RECORD_KIND = "infra-deploy-plan"
RECORD_VERSION = 1
PLAN_FILE = "deploy.tfplan"
# a reviewed action covers these planned actions (a predicted replacement may turn out an update)
COVERS: dict[str, set[str]] = {
    "replace": {"replace", "update"},
    "update": {"update"},
    "create": {"create"},
    "delete": {"delete"},
    "move": {"move"},
}
_ABSENT = "(absent)"


class NeedsApproval(InfraError):
    """What would be applied is not what was reviewed; nothing was applied (from this stack on)."""

    exit_code = EXIT_NEEDS_APPROVAL


@cache
def volatile() -> list[tuple[str, tuple[str, ...]]]:
    entries = yaml.safe_load(VOLATILE_FILE.read_text())
    return [(e["type"], tuple(e["paths"])) for e in entries]


def is_volatile(rtype: str, path: str) -> bool:
    return any((t in ("*", rtype)) and any(fnmatch.fnmatchcase(path, g) for g in globs) for t, globs in volatile())


def _as_dict(change: ResourceChange | dict[str, Any]) -> dict[str, Any]:
    return change if isinstance(change, dict) else change.to_dict()


def _values(change: dict[str, Any]) -> dict[str, Any]:
    """The attribute values a change sets, without the volatile ones."""
    return {a["path"]: a.get("after") for a in change.get("attributes") or [] if not is_volatile(change["type"], a["path"])}


def counts(change: dict[str, Any]) -> bool:
    """A change that matters for the comparison: anything but an update of volatile attributes only."""
    return not (change["action"] == "update" and change.get("attributes") and not _values(change))


@dataclass
class Expected:
    """What one stack may do: the review's changes, or the post-merge plan's (``exact``: compare
    every attribute both ways; otherwise only the attributes both sides show)."""

    changes: list[dict[str, Any]]
    exact: bool
    source: str


Derived = Callable[[str, str], bool]


def follows_upstream(stack: Stack) -> Derived:
    """Whether ``(address, attribute path)`` is set, in ``stack``'s configuration, from another
    stack's output (a cross-stack reference reads ``data.terraform_remote_state``). Such a value
    is not in the configuration the synth hash binds, nor in an offline review: it follows what the
    upstream stack applied under its own approved plan."""
    by_address = {r.address: r for r in stack.resources}

    def derived(address: str, path: str) -> bool:
        resource = by_address.get(address)
        top = path.split(".", 1)[0].split("[", 1)[0]
        return resource is not None and "data.terraform_remote_state." in json.dumps(resource.values.get(top))

    return derived


def differences(
    expected: Expected, planned: list[ResourceChange] | list[dict[str, Any]], derived: Derived | None = None
) -> tuple[list[str], list[str]]:
    """``(problems, notes)``: what the plan would do that ``expected`` does not show (a problem
    stops the deploy), and what ``expected`` shows that the plan no longer does (already applied,
    or changed outside Terraform: a note). With ``derived`` (a pending stack), an update of only
    attributes set from upstream outputs is a note, not a problem."""
    want = {c["address"]: c for c in expected.changes if counts(c)}
    problems: list[str] = []
    notes: list[str] = []
    seen: set[str] = set()
    for change in (_as_dict(c) for c in planned):
        if not counts(change):
            continue
        address, action = change["address"], change["action"]
        seen.add(address)
        reviewed = want.get(address)
        values = _values(change)
        if reviewed is None and action == "update" and derived and values and all(derived(address, p) for p in values):
            notes.append(f"{address} update of {', '.join(sorted(values))}: set from the upstream stack's outputs")
            continue
        if reviewed is None:
            problems.append(f"{address} {action} (not in the {expected.source})")
            continue
        if action not in COVERS.get(reviewed["action"], {reviewed["action"]}):
            problems.append(f"{address} {action} (the {expected.source} shows {reviewed['action']})")
            continue
        now, then = values, _values(reviewed)
        paths = (set(now) | set(then)) if expected.exact else (set(now) & set(then))
        for path in sorted(paths):
            a, b = now.get(path, _ABSENT), then.get(path, _ABSENT)
            if a == b or b == UNKNOWN:
                continue
            if derived and derived(address, path):
                notes.append(f"{address}: {path} = {_short(a)}, set from the upstream stack's outputs")
            else:
                problems.append(f"{address}: {path} = {_short(a)} (the {expected.source} shows {_short(b)})")
    gone = sorted(set(want) - seen)
    notes += [f"{a}: in the {expected.source}, not planned now (already applied, or changed outside Terraform)" for a in gone]
    return problems, notes


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --- the review of the environment ---------------------------------------------------------------


@dataclass
class Reviewed:
    """One environment's entry in a review report (``infra review --format json``)."""

    env: str
    synth_hash: str
    changes: list[dict[str, Any]]
    planned_stacks: set[str]  # stacks the review had a real plan of (else: the offline prediction)
    source: str

    @classmethod
    def from_report(cls, data: dict[str, Any], env: str, source: str) -> Reviewed:
        entry = next((e for e in data.get("environments") or [] if isinstance(e, dict) and e.get("env") == env), None)
        if entry is None:
            raise NeedsApproval(f"{source}: the review has no entry for {env!r}; the change to {env} was not reviewed")
        if not isinstance(entry.get("synth_hash"), str) or not isinstance(entry.get("changes", []), list):
            raise NeedsApproval(f"{source}: the review's entry for {env} has no synth_hash or changes list")
        return cls(env, entry["synth_hash"], list(entry.get("changes") or []), set(entry.get("plans") or {}), source)

    @classmethod
    def load(cls, path: Path, env: str) -> Reviewed:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InfraError(f"{path}: not a review report ({exc}); write one with `infra review --format json`") from None
        return cls.from_report(data, env, str(path))

    def expected(self, stack: str) -> Expected:
        exact = stack in self.planned_stacks
        return Expected([c for c in self.changes if c.get("stack") == stack], exact, "review (real plan)" if exact else "review (offline)")


# --- the record the apply is held to ----------------------------------------------------------------


@dataclass
class StackPlan:
    stack: str
    status: Literal["planned", "pending"]
    changes: list[dict[str, Any]] = field(default_factory=list)  # the post-merge plan's (planned)
    reviewed: list[dict[str, Any]] = field(default_factory=list)
    reviewed_exact: bool = False
    notes: list[str] = field(default_factory=list)

    def expected(self) -> Expected:
        if self.status == "planned":
            return Expected(self.changes, True, "approved deploy plan")
        return Expected(self.reviewed, self.reviewed_exact, "review (real plan)" if self.reviewed_exact else "review (offline)")


@dataclass
class Record:
    env: str
    synth_hash: str
    commit: str
    review: dict[str, Any]  # the provenance of the review (Evidence.to_dict(), or {"file": path})
    stacks: list[StackPlan]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": RECORD_KIND, "version": RECORD_VERSION, **asdict(self)}

    def stack(self, name: str) -> StackPlan:
        for s in self.stacks:
            if s.stack == name:
                return s
        raise NeedsApproval(f"the deploy plan of {self.env} has no stack {name!r}: plan the deploy again")

    @classmethod
    def load(cls, path: Path) -> Record:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InfraError(f"{path}: not a deploy plan record ({exc}); write one with `infra deploy plan ENV --record FILE`") from None
        if not isinstance(data, dict) or data.get("kind") != RECORD_KIND or data.get("version") != RECORD_VERSION:
            raise InfraError(f"{path}: kind/version is not {RECORD_KIND} v{RECORD_VERSION}; write it with `infra deploy plan`")
        try:
            stacks = [StackPlan(**s) for s in data["stacks"]]
            return cls(data["env"], data["synth_hash"], data["commit"], data["review"], stacks)
        except (KeyError, TypeError) as exc:
            raise InfraError(f"{path}: a deploy plan record without {exc}") from None

    def markdown(self) -> str:
        lines = [f"### Deploy plan of {self.env} at `{self.commit[:12]}` (synth `{self.synth_hash[:12]}`)", ""]
        if pr := self.review.get("pull_request"):
            who = ", ".join(self.review.get("approved_by") or []) or "no reviewer (not required)"
            lines.append(
                f"Reviewed in #{pr} at `{str(self.review.get('head_sha'))[:12]}`, approved by {who}; review run {self.review.get('run_id')}."
            )
        elif self.review.get("file"):
            lines.append(f"Compared with the review in `{self.review['file']}` (a local file, not found through GitHub).")
        lines.append("")
        for s in self.stacks:
            if s.status == "pending":
                lines.append(f"- **{s.stack}**: pending: planned and compared with the review when the stacks before it are applied")
                continue
            lines.append(f"- **{s.stack}**: {len(s.changes)} change(s)" + (":" if s.changes else ""))
            for c in s.changes:
                lines.append(f"  - {c['action']} `{c['address']}`")
            lines += [f"  - note: {n}" for n in s.notes]
        return "\n".join(lines) + "\n"


@dataclass
class StackResult:
    stack: str
    compared_with: str
    applied: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class DeployResult:
    env: str
    synth_hash: str
    stacks: list[StackResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"env": self.env, "synth_hash": self.synth_hash, "stacks": [asdict(s) for s in self.stacks]}


# --- the engine -------------------------------------------------------------------------------------


def _selected(outdir: Path, env: str, only: list[str] | None) -> tuple[list[Stack], str]:
    stacks = apply_order(outdir, env)
    digest, _ = synth_hash(stacks)
    if only and (unknown := sorted(set(only) - {s.name for s in stacks})):
        raise InfraError(f"--stack {', '.join(unknown)}: not a stack of {env} ({', '.join(s.name for s in stacks)})")
    return stacks, digest


def _check_hash(env: str, digest: str, wanted: str, source: str) -> None:
    if digest != wanted:
        raise NeedsApproval(
            f"{env}: synth hash {digest[:12]} is not {wanted[:12] or '(none)'} of the {source}; "
            "the code being deployed is not the code that was reviewed: review it again"
        )


def _plan(stack: Stack, *, lock: bool) -> list[ResourceChange]:
    """Plan ``stack`` into ``deploy.tfplan`` and return its changes."""
    work = stack.path.parent
    run_checked("init", ["-input=false", "-no-color", *providers.prepare(stack)], work)
    run_checked("plan", ["-input=false", "-no-color", f"-lock={str(lock).lower()}", "-detailed-exitcode", f"-out={PLAN_FILE}"], work)
    _, shown = run_checked("show", ["-json", PLAN_FILE], work)
    return changes_from_plan(json.loads(shown), stack, load_table())


def _discard(stack: Stack) -> None:
    (stack.path.parent / PLAN_FILE).unlink(missing_ok=True)


def plan_deploy(
    outdir: Path, env: str, reviewed: Reviewed, *, commit: str, review: dict[str, Any], only: list[str] | None = None
) -> Record:
    """The post-merge plan of ``env`` compared with the review; :class:`NeedsApproval` when they differ."""
    stacks, digest = _selected(outdir, env, only)
    _check_hash(env, digest, reviewed.synth_hash, reviewed.source)
    record = Record(env, digest, commit, review, [])
    problems: list[str] = []
    blocked_by = ""
    for stack in stacks:
        expected = reviewed.expected(stack.name)
        sp = StackPlan(stack.name, "pending", reviewed=expected.changes, reviewed_exact=expected.exact)
        record.stacks.append(sp)
        if only and stack.name not in only:
            blocked_by = blocked_by or f"{stack.name} is not planned here"
            sp.notes.append("not planned in this job (--stack)")
            continue
        if blocked_by:
            sp.notes.append(f"pending: {blocked_by}")
            continue
        try:
            planned = _plan(stack, lock=False)
        finally:
            _discard(stack)
        sp.status, sp.changes = "planned", [c.to_dict() for c in planned if counts(c.to_dict())]
        found, sp.notes = differences(expected, planned)
        problems += [f"{stack.name}: {p}" for p in found]
        if sp.changes:
            blocked_by = f"{stack.name} has changes to apply first"
    if problems:
        raise NeedsApproval(
            f"{env}: the plan after the merge differs from the review; nothing may be applied. "
            "Open a pull request (or re-run the review) and approve the new plan:\n  " + "\n  ".join(problems)
        )
    return record


def apply_deploy(outdir: Path, env: str, record: Record, *, only: list[str] | None = None, apply: bool = True) -> DeployResult:
    """Plan each (selected) stack again, compare with the record, apply that plan."""
    if record.env != env:
        raise InfraError(f"the deploy plan record is for {record.env!r}, not {env!r}")
    stacks, digest = _selected(outdir, env, only)
    _check_hash(env, digest, record.synth_hash, "approved deploy plan")
    result = DeployResult(env, digest)
    for stack in stacks:
        if only and stack.name not in only:
            continue
        entry = record.stack(stack.name)
        expected = entry.expected()
        try:
            planned = _plan(stack, lock=True)
            problems, notes = differences(expected, planned, follows_upstream(stack) if entry.status == "pending" else None)
            if problems:
                raise NeedsApproval(
                    f"{stack.name}: the plan differs from the {expected.source}; nothing applied from this stack on. "
                    "Plan the deploy again and approve it:\n  " + "\n  ".join(problems)
                )
            sr = StackResult(stack.name, expected.source, sorted(f"{c.action} {c.address}" for c in planned if counts(c.to_dict())), notes)
            if apply:
                run_checked("apply", ["-input=false", "-no-color", PLAN_FILE], stack.path.parent)
        finally:
            _discard(stack)
        result.stacks.append(sr)
    return result
