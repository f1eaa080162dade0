"""``infra deploy ENV --reviewed review.json``: apply what was reviewed, and nothing else.

1. The synth hash of ``ENV`` (its stacks' ``cdk.tf.json``) must equal the one the review of the merged
   pull request recorded; otherwise the code being deployed is not the code reviewed: stop (exit 3).
2. Per stack, in dependency order (the environment stack, then its workloads stack):
   * a saved plan from the review (``--saved-plans DIR/<stack>.tfplan``) is applied when its change set
     equals the reviewed one and Terraform accepts it (it refuses a plan whose state has moved since:
     "Saved plan is stale"); otherwise
   * the engine plans again and compares the set of resource changes (address and action; an update
     whose every changed attribute is declared volatile in ``volatile.yaml`` does not count) with the
     reviewed set. A change the review did not show, or a stronger action (an update that became a
     replacement, an unreviewed destroy) stops the deploy for a new approval (exit 3). Otherwise the
     plan just made is applied, so what is applied is exactly what was compared.

Comparing change sets, not plan text, keeps the check stable against values that differ every run
(timestamps, computed tags, autoscaled sizes).
"""

from __future__ import annotations

import fnmatch
import json
import shutil
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from infra import engine
from infra.changes.model import ResourceChange
from infra.changes.plan import changes_from_plan
from infra.changes.table import load_table
from infra.engine import run_checked
from infra.errors import EXIT_NEEDS_APPROVAL, InfraError
from infra.synthesized.digest import synth_hash
from infra.synthesized.reader import Stack, env_of, load_stacks

VOLATILE_FILE = Path(__file__).with_name("volatile.yaml")
# a reviewed action covers these planned actions (a likely replacement may turn out an update)
COVERS: dict[str, set[str]] = {
    "replace": {"replace", "update"},
    "update": {"update"},
    "create": {"create"},
    "delete": {"delete"},
    "move": {"move"},
}


class NeedsApproval(InfraError):
    """What would be applied is not what was reviewed; nothing was applied (from this stack on)."""

    exit_code = EXIT_NEEDS_APPROVAL


@cache
def volatile() -> list[tuple[str, tuple[str, ...]]]:
    entries = yaml.safe_load(VOLATILE_FILE.read_text())
    return [(e["type"], tuple(e["paths"])) for e in entries]


def _is_volatile(rtype: str, path: str) -> bool:
    return any((t in ("*", rtype)) and any(fnmatch.fnmatchcase(path, g) for g in globs) for t, globs in volatile())


def change_set(changes: list[ResourceChange] | list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """``{(stack, address): action}``, dropping updates that change only volatile attributes."""
    out: dict[tuple[str, str], str] = {}
    for c in changes:
        d: dict[str, Any] = c if isinstance(c, dict) else c.to_dict()
        if d["action"] == "update" and d.get("attrs") and all(_is_volatile(d["type"], a["path"]) for a in d["attrs"]):
            continue
        out[(d["stack"], d["address"])] = d["action"]
    return out


def unreviewed(reviewed: dict[tuple[str, str], str], planned: dict[tuple[str, str], str]) -> list[str]:
    """What the plan would do that the review did not show."""
    problems = []
    for key, action in sorted(planned.items()):
        was = reviewed.get(key)
        if was is None:
            problems.append(f"{key[0]}: {key[1]} {action} (not in the review)")
        elif action not in COVERS.get(was, {was}):
            problems.append(f"{key[0]}: {key[1]} {action} (reviewed as {was})")
    return problems


@dataclass
class Reviewed:
    """The review of the merged pull request, for one environment."""

    env: str
    synth_hash: str
    changes: dict[tuple[str, str], str]
    planned: bool  # the review had a real plan (else its changes are the offline prediction)
    source: str = ""

    @classmethod
    def load(cls, path: Path, env: str) -> Reviewed:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InfraError(f"{path}: not a review report ({exc}); write one with `infra review --format json`") from None
        entry = next((e for e in data.get("environments", []) if e.get("env") == env), None)
        if entry is None:
            raise NeedsApproval(f"{path}: the review has no entry for {env!r}; review the change for {env} first")
        return cls(env, entry["synth_hash"], change_set(entry.get("changes", [])), bool(entry.get("plans")), str(path))


@dataclass
class StackResult:
    stack: str
    how: str  # "saved plan" | "new plan" | "no changes"
    applied: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class DeployResult:
    env: str
    synth_hash: str
    stacks: list[StackResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"env": self.env, "synth_hash": self.synth_hash, "stacks": [s.__dict__ for s in self.stacks]}


def _planned(stack: Stack, plan_file: str) -> list[ResourceChange]:
    _, shown = run_checked("show", ["-json", plan_file], stack.path.parent)
    return changes_from_plan(json.loads(shown), stack, load_table())


def _order(stacks: list[Stack]) -> list[Stack]:
    """The environment stack before the stacks that read its outputs (``<env>-workloads``)."""
    return sorted(stacks, key=lambda s: (s.name != env_of(s.name), s.name))


def deploy(outdir: Path, env: str, reviewed: Reviewed, *, saved_plans: Path | None = None, apply: bool = True) -> DeployResult:
    stacks = _order([s for s in load_stacks(outdir) if env_of(s.name) == env])
    if not stacks:
        raise InfraError(f"{outdir}: no stack of environment {env!r}; run `make synth`")
    digest, _ = synth_hash(stacks)
    if digest != reviewed.synth_hash:
        raise NeedsApproval(
            f"{env}: synth hash {digest[:12]} is not the reviewed {reviewed.synth_hash[:12] or '(none)'} ({reviewed.source}); "
            "the code being deployed is not the code that was reviewed: review it again"
        )
    result = DeployResult(env, digest)
    for stack in stacks:
        work = stack.path.parent
        run_checked("init", ["-input=false", "-no-color"], work)
        wanted = {k: v for k, v in reviewed.changes.items() if k[0] == stack.name}
        sr = StackResult(stack.name, "new plan")
        if not reviewed.planned:
            sr.notes.append("the review had no real plan: compared with its offline prediction")
        saved = (saved_plans / f"{stack.name}.tfplan") if saved_plans else None
        if saved is not None and saved.is_file():
            shutil.copy(saved, work / "reviewed.tfplan")
            saved_set = change_set(_planned(stack, "reviewed.tfplan"))
            problems = unreviewed(wanted, saved_set)
            if problems:
                sr.notes.append("the saved plan differs from the review: " + "; ".join(problems))
            elif apply:
                code, _, err = engine.run("apply", ["-input=false", "-no-color", "reviewed.tfplan"], cwd=work)
                if code == 0:
                    sr.how, sr.applied = "saved plan", sorted(f"{a} {k[1]}" for k, a in saved_set.items())
                    result.stacks.append(sr)
                    continue
                if "stale" not in err.lower():
                    raise InfraError(f"terraform apply of the saved plan in {work} failed:\n" + "\n".join(err.strip().splitlines()[-15:]))
                sr.notes.append("the saved plan is stale (the state moved since the review): planned again")
        run_checked("plan", ["-input=false", "-no-color", "-detailed-exitcode", "-out=deploy.tfplan"], work)
        planned = change_set(_planned(stack, "deploy.tfplan"))
        problems = unreviewed(wanted, planned)
        if problems:
            raise NeedsApproval(
                f"{stack.name}: the plan differs from the reviewed change set; nothing applied from this stack on. "
                "Re-run the review on a pull request and approve it again:\n  " + "\n  ".join(problems)
            )
        missing = sorted(set(wanted) - set(planned))
        if missing:
            sr.notes.append("reviewed but not planned now (already applied or changed outside): " + ", ".join(k[1] for k in missing))
        sr.applied = sorted(f"{a} {k[1]}" for k, a in planned.items())
        if not planned:
            sr.how = "no changes"
        if apply:
            run_checked("apply", ["-input=false", "-no-color", "deploy.tfplan"], work)
        result.stacks.append(sr)
    return result
