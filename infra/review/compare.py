"""``infra review``: what a change does to each environment, before anyone touches a cloud.

Base and head are two synth outputs (the base usually synthesized from a git ref in a temporary
worktree, see :func:`infra.synth.synth_ref`). For every environment the review collects the
resource changes (offline diff, or a real plan where one is given), the permission delta, the
backend/provider/environment-file changes, the policy and cost deltas and, for environments that
promote into another, the parity between the two. :mod:`infra.review.report` renders it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from environments.loader import Environments, load_environments
from environments.schema import Environment
from infra.changes.diff import diff_stacks
from infra.changes.model import ACTION_ORDER, ResourceChange
from infra.changes.plan import changes_from_plan, load_plan
from infra.changes.table import Table, load_table
from infra.errors import EXIT_FINDINGS, EXIT_OK, InfraError
from infra.review import iam
from infra.review.model import PermissionChange, TopChange
from infra.synthesized.digest import synth_hash
from infra.synthesized.paths import flatten
from infra.synthesized.reader import Stack, env_of, load_stacks

CHECKS = ("policy", "cost", "parity")
# environment-file fields a reviewer must see first: who deploys it, when, with which guard rails
TOP_FIELDS = (
    "branch",
    "requires_approval",
    "promotes_to",
    "budget",
    "state",
    "policy",
    "aws.account_id",
    "aws.region",
    "gcp.project_id",
    "gcp.region",
)


@dataclass(frozen=True)
class FindingRow:
    env: str
    check: str
    severity: str
    path: str
    title: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return self.__dict__.copy()


@dataclass
class EnvReview:
    env: str
    state: Literal["changed", "unchanged", "new", "removed"]
    protected: bool
    synth_hash: str  # of the head's cdk.tf.json files ("" when removed)
    base_hash: str
    stack_hashes: dict[str, str] = field(default_factory=dict)
    changes: list[ResourceChange] = field(default_factory=list)
    permissions: list[PermissionChange] = field(default_factory=list)
    top: list[TopChange] = field(default_factory=list)
    plans: dict[str, str] = field(default_factory=dict)  # stack -> plan file used instead of the offline diff
    policy_introduced: list[FindingRow] | None = None  # None: not computed
    policy_fixed: list[FindingRow] | None = None
    cost: Any = None  # infra.cost.diff.EnvDelta
    cost_failing: list[str] = field(default_factory=list)
    parity: Any = None  # infra.parity.ParityResult (head), for an environment that promotes into another
    parity_new: list[Any] = field(default_factory=list)  # its unexplained differences the base did not have

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)

    @property
    def broadening(self) -> list[PermissionChange]:
        return [p for p in self.permissions if p.broadening]

    @property
    def blocking(self) -> list[str]:
        reasons = [f"{c.path}: {c.blocking}" for c in self.changes if c.blocking]
        reasons += [f"{t.what}: {t.blocking}" for t in self.top if t.blocking]
        reasons += [f"policy: {f.check} fails on {f.path} ({f.title})" for f in self.policy_introduced or []]
        reasons += self.cost_failing
        reasons += [f"parity with {self.parity.env_b}: {d.describe()}" for d in self.parity_new]
        return reasons

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "state": self.state,
            "protected": self.protected,
            "synth_hash": self.synth_hash,
            "base_synth_hash": self.base_hash,
            "stack_hashes": self.stack_hashes,
            "counts": {a: self.count(a) for a in ACTION_ORDER},
            "blocking": self.blocking,
            "plans": self.plans,
            "top": [t.to_dict() for t in self.top],
            "changes": [c.to_dict() for c in self.changes],
            "permissions": [p.to_dict() for p in self.permissions],
            "policy": None
            if self.policy_introduced is None
            else {"introduced": [f.to_dict() for f in self.policy_introduced], "fixed": [f.to_dict() for f in self.policy_fixed or []]},
            "cost": self.cost.to_dict() if self.cost is not None else None,
            "parity": self.parity.to_dict() if self.parity is not None else None,
            "parity_new": [d.to_dict() for d in self.parity_new],
        }


@dataclass
class Review:
    base_label: str
    head_label: str
    envs: list[EnvReview]
    notes: list[str] = field(default_factory=list)
    cost_diff: Any = None  # infra.cost.diff.CostDiff

    @property
    def blocking(self) -> list[str]:
        return [f"{e.env}: {r}" for e in self.envs for r in e.blocking]

    @property
    def exit_code(self) -> int:
        return EXIT_FINDINGS if self.blocking else EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base_label,
            "head": self.head_label,
            "ok": not self.blocking,
            "blocking": self.blocking,
            "notes": self.notes,
            "environments": [e.to_dict() for e in self.envs],
            "cost": self.cost_diff.to_dict() if self.cost_diff is not None else None,
        }


def _group(outdir: Path) -> dict[str, list[Stack]]:
    grouped: dict[str, list[Stack]] = {}
    for stack in load_stacks(outdir):
        grouped.setdefault(env_of(stack.name), []).append(stack)
    return grouped


def _top_changes(
    base: Environment | None, head: Environment | None, b_stacks: list[Stack], h_stacks: list[Stack], protected: bool
) -> list[TopChange]:
    top: list[TopChange] = []
    b_flat = flatten(base.model_dump(mode="json")) if base else {}
    h_flat = flatten(head.model_dump(mode="json")) if head else {}
    for path in sorted(set(b_flat) | set(h_flat)):
        if not any(path == f or path.startswith(f + ".") or path.startswith(f + "[") for f in TOP_FIELDS):
            continue
        if b_flat.get(path) != h_flat.get(path) and base and head:
            top.append(TopChange("environment", path, b_flat.get(path), h_flat.get(path)))
    b_by = {s.name: s for s in b_stacks}
    for s in h_stacks:
        old = b_by.get(s.name)
        if old is None:
            continue
        if old.backend != s.backend:
            top.append(
                TopChange(
                    "backend",
                    f"{s.name}: terraform.backend",
                    old.backend,
                    s.backend,
                    "the state moves: migrate it (`terraform init -migrate-state`) before apply, or every resource is created again"
                    if protected
                    else "",
                )
            )
        b_prov, h_prov = old.providers, s.providers
        for name in sorted(set(b_prov) | set(h_prov)):
            bv, hv = b_prov.get(name, {}).get("version"), h_prov.get(name, {}).get("version")
            if bv != hv:
                top.append(TopChange("provider", f"{s.name}: provider {name}", bv, hv))
    return top


def _blocking(change: ResourceChange, env: str, protected: bool) -> str:
    if not protected or change.action not in ("delete", "replace"):
        return ""
    if change.stateful == "always" or (change.stateful == "with_capacity" and change.has_capacity):
        what = "destroying" if change.action == "delete" else "replacing"
        holds = "running nodes" if change.stateful == "with_capacity" else "state"
        return f"{what} a stateful {change.type} (it holds {holds}) in protected environment {env}"
    return ""


def review(
    base_out: Path,
    base_env_dir: Path,
    head_out: Path,
    head_env_dir: Path,
    *,
    names: list[str] | None = None,
    plans: dict[str, Path] | None = None,
    checks: tuple[str, ...] = CHECKS,
    base_label: str = "base",
    head_label: str = "head",
    cache_dir: Path | None = None,
    table: Table | None = None,
) -> Review:
    """Compare two synth outputs environment by environment."""
    table = table or load_table()
    base_envs = load_environments(base_env_dir)
    head_envs = load_environments(head_env_dir)
    all_names = list(head_envs) + [n for n in base_envs if n not in head_envs]
    if names:
        unknown = [n for n in names if n not in all_names]
        if unknown:
            raise InfraError(f"no environment named {', '.join(unknown)}; one of {', '.join(all_names)}")
        all_names = [n for n in all_names if n in names]
    b_stacks, h_stacks = _group(base_out), _group(head_out)
    protected = head_envs.protected | base_envs.protected
    plans = plans or {}
    known_stacks = {s.name for stacks in h_stacks.values() for s in stacks}
    for stack_name in plans:
        if stack_name not in known_stacks:
            raise InfraError(f"--plan {stack_name}=…: no stack {stack_name!r} in {head_out}; one of {', '.join(sorted(known_stacks))}")
    result = Review(base_label, head_label, [])
    for name in all_names:
        b_env, h_env = base_envs.get(name), head_envs.get(name)
        bs, hs = b_stacks.get(name, []), h_stacks.get(name, [])
        h_hash, h_per = synth_hash(hs)
        b_hash, _ = synth_hash(bs)
        same_env = (b_env.model_dump() if b_env else None) == (h_env.model_dump() if h_env else None)
        state = "new" if not bs else "removed" if not hs else "unchanged" if h_hash == b_hash and same_env else "changed"
        er = EnvReview(name, state, name in protected, h_hash, b_hash, h_per)  # type: ignore[arg-type]
        er.top = _top_changes(b_env, h_env, bs, hs, er.protected)
        by_b = {s.name: s for s in bs}
        by_h = {s.name: s for s in hs}
        for stack_name in list(by_h) + [n for n in by_b if n not in by_h]:
            b, h = by_b.get(stack_name), by_h.get(stack_name)
            if stack_name in plans:
                er.plans[stack_name] = str(plans[stack_name])
                er.changes += changes_from_plan(load_plan(plans[stack_name]), h, table)
            elif state != "unchanged":
                er.changes += diff_stacks(b, h, table)
            if state != "unchanged" or stack_name in plans:
                er.permissions += iam.delta(iam.grants(b) if b else [], iam.grants(h) if h else [])
        for c in er.changes:
            c.blocking = _blocking(c, name, er.protected)
        er.changes.sort(key=lambda c: (ACTION_ORDER[c.action], c.stack, c.path))
        result.envs.append(er)
    touched = [e.env for e in result.envs if e.state != "unchanged" or e.plans]
    if "policy" in checks:
        _policy_delta(result, base_out, base_envs, head_out, head_envs, [n for n in touched if n in head_envs], cache_dir)
    if "cost" in checks:
        _cost_delta(result, base_out, head_out, base_envs, head_envs)
    if "parity" in checks:
        _parity(result, base_out, base_envs, head_out, head_envs, set(touched))
    return result


def _findings(outdir: Path, envs: Environments, names: list[str], cache: Path | None) -> list[FindingRow]:
    from infra.policy import checkov
    from infra.policy import gate as policy

    if cache is not None and cache.exists():
        return [FindingRow(**f) for f in json.loads(cache.read_text())]
    report = policy.run(outdir, envs, names, run_checkov=checkov.available())
    rows = [FindingRow(f.env, f.check, f.severity, f.path, f.title, f.message) for f in report.failures]
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps([r.to_dict() for r in rows]))
    return rows


def _policy_delta(
    result: Review,
    base_out: Path,
    base_envs: Environments,
    head_out: Path,
    head_envs: Environments,
    names: list[str],
    cache_dir: Path | None,
) -> None:
    from infra.policy import checkov

    if not names:
        return
    if not checkov.available():
        result.notes.append("policy delta: checkov is not installed here (`make install`), so it covers our rules (MLP0nn) only")
    base_names = [n for n in names if n in base_envs]
    try:
        cache = None
        if cache_dir is not None:
            fingerprint = hashlib.sha256((checkov.rules_fingerprint() + ",".join(base_names)).encode()).hexdigest()[:16]
            cache = cache_dir / f"policy-{fingerprint}.json"
        base = _findings(base_out, base_envs, base_names, cache) if base_names else []
        head = _findings(head_out, head_envs, names, None)
    except InfraError as exc:
        result.notes.append(f"policy delta not available: {exc}")
        return

    def key(f: FindingRow) -> tuple[str, str, str]:
        return (f.env, f.check, f.path)

    b_keys, h_keys = {key(f) for f in base}, {key(f) for f in head}
    for er in result.envs:
        if er.env not in names:
            continue
        er.policy_introduced = [f for f in head if f.env == er.env and key(f) not in b_keys]
        er.policy_fixed = [f for f in base if f.env == er.env and key(f) not in h_keys]


def _cost_delta(
    result: Review,
    base_out: Path,
    head_out: Path,
    base_envs: Environments,
    head_envs: Environments,
) -> None:
    from infra.cost import diff as cost_diff
    from infra.cost.estimate import estimate

    try:
        head = estimate(head_out, head_envs, [e.env for e in result.envs if e.env in head_envs and e.state != "removed"])
        base = estimate(base_out, base_envs, [e.env for e in result.envs if e.env in base_envs and e.state != "new"])
    except InfraError as exc:
        result.notes.append(f"cost delta not available: {exc}")
        return
    d = cost_diff.diff(base, head)
    d.base_label, d.head_label = result.base_label, result.head_label
    result.cost_diff = d
    by_env = {e.env: e for e in d.envs}
    for er in result.envs:
        delta = by_env.get(er.env)
        er.cost = delta
        if delta is None:
            continue
        if delta.increase_exceeded:
            er.cost_failing.append(f"cost: +{delta.pct:.1f}% a month is above budget.max_increase_pct ({delta.max_increase_pct:g}%)")
        er.cost_failing += [f"cost: {est:,.2f} USD/month crosses the {scope} budget of {bud:,.2f}" for scope, est, bud in delta.over_budget]


def _parity(result: Review, base_out: Path, base_envs: Environments, head_out: Path, head_envs: Environments, touched: set[str]) -> None:
    from infra import parity

    protected = head_envs.protected
    by_env = {e.env: e for e in result.envs}
    for name, env in head_envs.items():
        target = env.promotes_to
        if name not in protected or not target or target not in head_envs or not ({name, target} & touched) or name not in by_env:
            continue
        head = parity.compare(head_out, head_envs[name], head_envs[target])
        new = head.unexplained
        if name in base_envs and target in base_envs:
            try:
                base = parity.compare(base_out, base_envs[name], base_envs[target])
                known = {d.key() for d in base.unexplained}
                new = [d for d in new if d.key() not in known]
            except InfraError:
                pass
        by_env[name].parity = head
        by_env[name].parity_new = new
        result.notes.append(
            f"parity {name} → {target}: {len(head.differences)} difference(s) over {head.mapped} mapped resources, "
            f"{len(head.unexplained)} not declared in the environment files ({len(new)} new)"
        )
