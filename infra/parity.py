"""``infra parity A B``: does environment B's infrastructure mirror A's, apart from what their
environment files declare?

Resources are mapped between the two environments by construct path with the environment's name
taken out (``staging/aws-eks/cluster`` <-> ``production/aws-eks/cluster``). Every structural
difference is listed: a resource present in one environment only, an attribute whose values differ.
A difference is *explained* when the environment files account for it:

* an attribute whose two values are the two environments' values of one declared field (a size, a
  count, an instance type, spot or not), or a string that becomes the other when every declared
  value in it is swapped for the other environment's (names, account and project ids, CIDRs);
* a value present on one side only (an extra instance type, an extra GPU toleration) that the
  environment files declare on that side only;
* a resource whose construct path names something declared on that side only (a GPU pool, a
  registry), or that :data:`STRUCTURAL` ties to a declared field whose values differ (NAT per
  zone instead of a single NAT gives two more NAT gateways).

Anything else is unexplained, and ``infra parity`` exits 1 naming the resource and the attribute.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from environments.schema import Environment
from infra.errors import InfraError
from infra.markdown import md_cell
from infra.synthesized.paths import flatten
from infra.synthesized.reader import Resource, env_of, load_stacks

# declared field -> construct paths (environment name taken out) of resources whose number it sets
STRUCTURAL: dict[str, tuple[str, ...]] = {
    "aws.network.nat": ("aws-network/nat-*", "aws-network/nat-eip-*", "aws-network/private-route-*", "aws-network/private-default-*"),
    "budget.recipients": ("*-budget/email-*",),
    "aws.network.zones": ("aws-network/private-[0-9]*", "aws-network/public-[0-9]*"),
    "monitoring.recipients": ("aws-monitoring/recipient-*", "gcp-monitoring/recipient-*"),
    "models.replica_region": ("aws-models/replica*", "aws-models/replication*", "aws-replica"),
    # the environment promoted into copies images and models out of this one (its deploy identity)
    "promotes_to": ("gcp-models/promotion-reads", "gcp-ar-*/promotion-pulls"),
}
_TOKEN_EDGE = r"(?<![A-Za-z0-9]){}(?![A-Za-z0-9])"


@dataclass(frozen=True)
class Difference:
    kind: str  # only-in-a | only-in-b | attribute
    resource: str  # construct path without the environment (``aws-eks/cluster``)
    type: str
    attribute: str = ""
    a: Any = None
    b: Any = None
    explained_by: tuple[str, ...] = ()

    @property
    def explained(self) -> bool:
        return bool(self.explained_by)

    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.resource, self.attribute)

    def sides(self) -> tuple[Any, Any]:
        """What each environment has: the value, ``present`` for a whole resource, ``–`` for nothing."""
        if self.kind == "attribute":
            return self.a, self.b
        return ("present", "–") if self.kind == "only-in-a" else ("–", "present")

    def describe(self) -> str:
        if self.kind == "attribute":
            return f"{self.resource} ({self.type}) `{self.attribute}`: {_short(self.a)} vs {_short(self.b)}"
        return f"{self.resource} ({self.type}) exists in {'the first' if self.kind == 'only-in-a' else 'the second'} environment only"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "resource": self.resource,
            "type": self.type,
            "attribute": self.attribute,
            "a": self.a,
            "b": self.b,
            "explained_by": list(self.explained_by),
        }


@dataclass
class ParityResult:
    env_a: str
    env_b: str
    mapped: int
    differences: list[Difference] = field(default_factory=list)

    @property
    def unexplained(self) -> list[Difference]:
        return [d for d in self.differences if not d.explained]

    @property
    def ok(self) -> bool:
        return not self.unexplained

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.env_a,
            "b": self.env_b,
            "mapped": self.mapped,
            "ok": self.ok,
            "unexplained": len(self.unexplained),
            "differences": [d.to_dict() for d in self.differences],
        }


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _resources(outdir: Path, env: str) -> dict[str, Resource]:
    """Resources of one environment keyed by construct path without the environment's name."""
    out = {}
    for stack in load_stacks(outdir):
        if env_of(stack.name) != env:
            continue
        suffix = stack.name[len(env) :]  # "" or "-workloads"
        for res in stack.resources:
            rest = res.path.split("/", 1)[1] if "/" in res.path else res.path
            out[f"{suffix.lstrip('-') + ':' if suffix else ''}{rest}"] = res
    return out


# (resource type, attribute pattern) -> declared fields (patterns) the stacks derive that attribute from
DERIVED: dict[tuple[str, str], tuple[str, ...]] = {
    ("google_container_node_pool", "autoscaling.location_policy"): (
        "gcp.cluster.gpu_node_pools[*].spot",
        "gcp.cluster.system_node_pool.spot",
    ),
    ("helm_release", "values*{}*nvidia.com/gpu"): ("serving.gpu_pool",),
    ("helm_release", "values*{}*tolerations*"): ("serving.gpu_pool",),
    ("helm_release", "values*{}*nodeSelector*"): ("serving.gpu_pool",),
    # monitoring: thresholds turned into durations, texts and dashboards; channels per recipient
    ("aws_cloudwatch_metric_alarm", "alarm_description"): ("monitoring",),
    ("aws_cloudwatch_dashboard", "dashboard_body*"): ("monitoring", "aws.cluster.gpu_node_groups", "aws.endpoints"),
    ("google_monitoring_alert_policy", "conditions*"): ("monitoring", "gcp.cluster.gpu_node_pools"),
    ("google_monitoring_alert_policy", "documentation.content"): ("monitoring", "gcp.cluster.gpu_node_pools"),
    ("google_monitoring_alert_policy", "notification_channels*"): ("monitoring.recipients",),
    ("google_monitoring_dashboard", "dashboard_json*"): ("gcp.cluster.gpu_node_pools",),
    ("google_storage_bucket", "soft_delete_policy.retention_duration_seconds"): ("models.gcs_retention_days",),
    ("google_storage_bucket", "lifecycle_rule*days_since_noncurrent_time"): ("models.keep_noncurrent_days",),
    # the environment promoted into reads this one's registry (its deploy role in the bucket and key
    # policies); statements are keyed by their Sid (see _by_sid), so only those statements match
    ("aws_kms_key", "policy{}.Statement.PromotionDecryptsModels*"): ("promotes_to",),
    ("aws_s3_bucket_policy", "policy{}.Statement.PromotionReads*"): ("promotes_to",),
    ("aws_ecr_repository_policy", "policy{}.Statement.PromotionPulls*"): ("promotes_to",),
    # a type may be narrowed to construct paths with "@": only the promotion grants, not every member
    ("google_storage_bucket_iam_member@gcp-models/promotion-reads", "member"): ("promotes_to",),
    ("google_artifact_registry_repository_iam_member@gcp-ar-*/promotion-pulls", "member"): ("promotes_to",),
}
_REF = re.compile(r"\$\{([a-z][a-z0-9_]*)\.([A-Za-z0-9_-]+)(\.[^}]*)?\}")
_MAX_CANDIDATES = 64


def _canon(value: Any) -> str:
    """A comparable form: numbers by value, booleans lower case, enums without case or separators."""
    if isinstance(value, bool):
        return str(value).lower()
    text = str(value)
    if _number(text):
        return repr(float(text))
    return re.sub(r"[_-]", "", text.lower()) if re.fullmatch(r"[A-Za-z_-]+", text) else text


class _Declared:
    """What the two environment files declare, as leaf paths and values."""

    def __init__(self, a: Environment, b: Environment) -> None:
        self.a = {k: v for k, v in flatten(a.model_dump(mode="json")).items() if v not in (None, [], {})}
        self.b = {k: v for k, v in flatten(b.model_dump(mode="json")).items() if v not in (None, [], {})}
        self.pairs: dict[tuple[str, str], set[str]] = {}
        self.differing = {p for p in set(self.a) | set(self.b) if self.a.get(p) != self.b.get(p)}
        raw_pairs: list[tuple[str, str, str]] = [(a.name, b.name, "name")]
        for path in self.differing:
            va, vb = self.a.get(path), self.b.get(path)
            if va is not None and vb is not None:
                raw_pairs.append((str(va), str(vb), path))
                self.pairs.setdefault((_canon(va), _canon(vb)), set()).add(path)
        self.pairs.setdefault((_canon(a.name), _canon(b.name)), set()).add("name")
        # string swaps inside values: every declared text, and numbers that map one way only
        targets: dict[str, set[str]] = {}
        for va, vb, _ in raw_pairs:
            targets.setdefault(va, set()).add(vb)
        swaps: dict[str, dict[str, set[str]]] = {}  # A's text -> B's text -> declared fields
        for va, vb, path in raw_pairs:
            if len(va) < 2 or (_number(va) and len(targets[va]) > 1):
                continue
            swaps.setdefault(va, {}).setdefault(vb, set()).add(path)
        self.swaps = swaps
        keys = sorted(swaps, key=len, reverse=True)
        self.swap_re = re.compile(_TOKEN_EDGE.format("(" + "|".join(re.escape(k) for k in keys) + ")")) if keys else None
        self.cidrs = [(va, vb, path) for va, vb, path in raw_pairs if _cidr(va) and _cidr(vb)]
        texts_a = {_canon(v) for v in self.a.values()}
        texts_b = {_canon(v) for v in self.b.values()}
        self.only_a = {str(v): p for p, v in self.a.items() if _canon(v) not in texts_b}
        self.only_b = {str(v): p for p, v in self.b.items() if _canon(v) not in texts_a}

    def swap(self, text: str) -> list[tuple[str, frozenset[str]]]:
        """Every version of ``text`` with A's declared values swapped for B's at once (longest
        first, never a swapped value again), each with the declared fields it used."""
        if self.swap_re is None:
            return [(text, frozenset())]
        pieces: list[list[tuple[str, frozenset[str]]]] = []
        last = 0
        for m in self.swap_re.finditer(text):
            options = [(vb, frozenset(paths)) for vb, paths in self.swaps[m.group(1)].items()]
            if m.start() and text[m.start() - 1] == ".":  # `pkg.dev` is a domain, not the environment
                options.insert(0, (m.group(1), frozenset()))
            pieces += [[(text[last : m.start()], frozenset())], options]
            last = m.end()
        pieces.append([(text[last:], frozenset())])
        candidates: list[tuple[str, frozenset[str]]] = [("", frozenset())]
        for opts in pieces:
            candidates = [(c + o, cu | ou) for c, cu in candidates for o, ou in opts][:_MAX_CANDIDATES]
        return candidates

    def explain_values(self, x: Any, y: Any, attr: str = "") -> tuple[str, ...]:
        paths = self.pairs.get((_canon(x), _canon(y)))
        if paths:
            # several fields share these two values (true/false): prefer those named like the attribute
            words = set(re.split(r"[._\[\]{}]+", attr))
            named = {p for p in paths if words & set(re.split(r"[._\[\]]+", p))}
            return tuple(sorted(named or paths))
        if not isinstance(x, str) or not isinstance(y, str):
            return ()
        if _cidr(x) and _cidr(y):
            return self._explain_cidr(x, y)
        used = next((u for c, u in self.swap(x) if c == y and u), None)
        return tuple(sorted(used)) if used else ()

    def _explain_cidr(self, x: str, y: str) -> tuple[str, ...]:
        """A subnet carved from each environment's declared range at the same offset."""
        nx, ny = ipaddress.ip_network(x, strict=False), ipaddress.ip_network(y, strict=False)
        for va, vb, path in self.cidrs:
            ca, cb = ipaddress.ip_network(va, strict=False), ipaddress.ip_network(vb, strict=False)
            if (
                nx.version == ca.version == ny.version == cb.version
                and nx.subnet_of(ca)  # type: ignore[arg-type]
                and ny.subnet_of(cb)  # type: ignore[arg-type]
                and nx.prefixlen == ny.prefixlen
                and int(nx.network_address) - int(ca.network_address) == int(ny.network_address) - int(cb.network_address)
            ):
                return (path,)
        return ()

    def explain_one_side(self, value: Any, side: str) -> tuple[str, ...]:
        only = self.only_a if side == "a" else self.only_b
        if str(value) in only:
            return (only[str(value)],)
        if isinstance(value, str):
            for declared, path in only.items():
                if len(declared) > 2 and not _number(declared) and re.search(_TOKEN_EDGE.format(re.escape(declared)), value):
                    return (path,)
        return ()

    def explain_derived(self, rtype: str, attr: str, resource: str = "") -> tuple[str, ...]:
        for (dtype, pattern), fields in DERIVED.items():
            dtype, _, where = dtype.partition("@")
            if where and not fnmatch.fnmatch(resource.split(":", 1)[-1], where):
                continue
            if dtype == rtype and fnmatch.fnmatch(attr, pattern):
                hits = sorted({p for p in self.differing for f in fields if _field_match(p, f)})
                if hits:
                    return tuple(hits)
        return ()

    def explain_resource(self, rest: str, side: str) -> tuple[str, ...]:
        only = self.only_a if side == "a" else self.only_b
        for seg in re.split(r"[/:]", rest):
            for value, path in only.items():
                if len(value) > 1 and (seg == value or seg.endswith("-" + value)):
                    return (path,)
        for declared, patterns in STRUCTURAL.items():
            differs = any(p == declared or p.startswith(declared + ".") or p.startswith(declared + "[") for p in self.differing)
            if differs and any(fnmatch.fnmatch(rest.split(":", 1)[-1], pat) for pat in patterns):
                return (declared,)
        return ()


def _field_match(path: str, pattern: str) -> bool:
    """``gcp.cluster.gpu_node_pools[1].spot`` matches ``gcp.cluster.gpu_node_pools[*].spot``."""
    bare = re.sub(r"\[\d+\]", "[*]", path)
    return bare == pattern or bare.startswith(pattern + ".") or bare.startswith(pattern + "[")


def _number(text: str) -> bool:
    return bool(re.fullmatch(r"-?\d+(\.\d+)?", text))


def _cidr(text: str) -> bool:
    return bool(re.fullmatch(r"[0-9a-fA-F:.]+/\d{1,3}", text))


def _by_path(res: Resource, stack_resources: dict[str, Resource]) -> dict[str, Any]:
    """A resource's leaves with references shown as construct paths without the environment."""

    def sub(m: re.Match[str]) -> str:
        target = stack_resources.get(f"{m.group(1)}.{m.group(2)}")
        where = target.path.split("/", 1)[-1] if target else f"{m.group(1)}.{m.group(2)}"
        return "${" + where + (m.group(3) or "") + "}"

    values = {k: _by_sid(v) for k, v in res.values.items()}
    return {k: _REF.sub(sub, v) if isinstance(v, str) else v for k, v in flatten(values).items()}


def _by_sid(value: Any) -> Any:
    """A policy document held in a string, its statements keyed by Sid when each has its own: two
    environments' policies then line up statement by statement, not by position."""
    if not isinstance(value, str) or '"Statement"' not in value:
        return value
    try:
        doc = json.loads(value)
    except json.JSONDecodeError:
        return value
    statements = doc.get("Statement") if isinstance(doc, dict) else None
    if not isinstance(statements, list) or not all(isinstance(st, dict) and st.get("Sid") for st in statements):
        return value
    sids = [st["Sid"] for st in statements]
    if len(set(sids)) != len(sids):
        return value
    return json.dumps({**doc, "Statement": {st["Sid"]: st for st in statements}}, sort_keys=True)


def compare(outdir: Path, env_a: Environment, env_b: Environment) -> ParityResult:
    """Every structural difference between two environments' synthesized stacks, explained or not."""
    ra, rb = _resources(outdir, env_a.name), _resources(outdir, env_b.name)
    if not ra or not rb:
        missing = env_a.name if not ra else env_b.name
        raise InfraError(f"{outdir}: no stack of environment {missing!r}; run `make synth`")
    declared = _Declared(env_a, env_b)
    result = ParityResult(env_a.name, env_b.name, len(set(ra) & set(rb)))
    one_sided: dict[str, tuple[str, ...]] = {}
    for rest in sorted(set(ra) - set(rb)):
        one_sided[rest] = declared.explain_resource(rest, "a")
        result.differences.append(Difference("only-in-a", rest, ra[rest].type, explained_by=one_sided[rest]))
    for rest in sorted(set(rb) - set(ra)):
        one_sided[rest] = declared.explain_resource(rest, "b")
        result.differences.append(Difference("only-in-b", rest, rb[rest].type, explained_by=one_sided[rest]))
    by_addr_a = {r.address: r for r in ra.values()}
    by_addr_b = {r.address: r for r in rb.values()}

    def via_reference(*values: Any) -> tuple[str, ...]:
        for value in values:
            for ref in re.findall(r"\$\{([^}.]+(?:/[^}.]+)*)", str(value)) if value is not None else []:
                if one_sided.get(ref):
                    return one_sided[ref]
        return ()

    for rest in sorted(set(ra) & set(rb)):
        fa = _by_path(ra[rest], by_addr_a)
        fb = _by_path(rb[rest], by_addr_b)
        # an attribute named after the environment (a tag key holding the cluster name) is mapped
        # to the other environment's name for it
        mapped: dict[str, str] = {}
        for attr in fa:
            match = None
            if attr not in fb:
                match = next((c for c, _ in declared.swap(attr) if c in fb and c not in fa), None)
            mapped[attr] = match or attr
        pairs = [(a_attr, b_attr) for a_attr, b_attr in mapped.items()]
        pairs += [("", b_attr) for b_attr in sorted(set(fb) - set(mapped.values()))]
        for a_attr, b_attr in pairs:
            x, y = fa.get(a_attr) if a_attr else None, fb.get(b_attr)
            if x == y:
                continue
            if x is None:
                why = declared.explain_one_side(y, "b") or via_reference(y)
            elif y is None:
                why = declared.explain_one_side(x, "a") or via_reference(x)
            else:
                why = declared.explain_values(x, y, a_attr) or via_reference(x, y)
            attr = a_attr or b_attr
            why = why or declared.explain_derived(ra[rest].type, attr, rest)
            result.differences.append(Difference("attribute", rest, ra[rest].type, attr, x, y, why))
    return result


def markdown(result: ParityResult, *, limit: int = 200) -> str:
    icon = "✅" if result.ok else "❌"
    lines = [
        f"#### {icon} Parity {result.env_a} → {result.env_b}: {len(result.differences)} difference(s), "
        f"{len(result.unexplained)} not declared in the environment files ({result.mapped} resources mapped)",
        "",
    ]
    rows = sorted(result.differences, key=lambda d: (d.explained, d.resource, d.attribute))
    if rows:
        lines += [f"| resource | attribute | {result.env_a} | {result.env_b} | explained by |", "|---|---|---|---|---|"]
    for d in rows[:limit]:
        a, b = (_short(v) for v in d.sides())
        why = ", ".join(f"`{p}`" for p in d.explained_by) if d.explained else "❌ **not declared**"
        lines.append(
            f"| `{d.resource}` | {('`' + d.attribute + '`') if d.attribute else '(resource)'} | {md_cell(a)} | {md_cell(b)} | {why} |"
        )
    if len(rows) > limit:
        lines.append(
            f"\n{len(rows) - limit} more difference(s); `infra parity {result.env_a} {result.env_b} --format json` lists them all."
        )
    return "\n".join(lines) + "\n"
