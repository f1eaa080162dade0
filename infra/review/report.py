"""Rendering of a review: Markdown for the pull request (built to GitHub's comment limit), the full
Markdown for a file and the job summary, JSON for machines, rich tables for a terminal.

The Markdown's summary table, top-level changes and blocking findings come first and are never
cut. The details follow per environment, section by section; when the text would pass the limit,
the least important sections shrink first (updates, then creates, moves, cost items, parity,
policy, permissions, destroys, replacements): first to one row per resource, then to a line saying
what was left out and where the full report is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from infra.changes.model import ResourceChange
from infra.cost.report import usd
from infra.markdown import MARKDOWN_LIMIT, md_cell
from infra.review.compare import EnvReview, Review
from infra.tables import Table

MAX_ATTRS = 25  # attribute rows per resource in the Markdown (the JSON has them all)
MAX_BLOCKING = 40
FULL_REPORT_HINT = "the full report is `{path}` (a workflow artifact) and the job summary"


def _v(value: Any, limit: int = 60) -> str:
    if value is None:
        return "∅"
    text = json.dumps(value) if not isinstance(value, str) else value
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return "`" + md_cell(text).replace("`", "'") + "`"


def _counts(e: EnvReview) -> str:
    return " | ".join(str(e.count(a)) for a in ("create", "update", "delete", "replace", "move"))


def _permissions(e: EnvReview) -> str:
    added = sum(1 for p in e.permissions if p.change == "added")
    removed = len(e.permissions) - added
    if not e.permissions:
        return "–"
    broad = len(e.broadening)
    return f"+{added} −{removed}" + (f", ⚠ {broad} broadening" if broad else "")


def _policy(e: EnvReview) -> str:
    if e.policy_introduced is None:
        return "–" if e.state == "unchanged" else "n/a"
    text = f"+{len(e.policy_introduced)} / −{len(e.policy_fixed or [])}"
    return f"❌ {text}" if e.policy_introduced else text


def _cost(e: EnvReview) -> str:
    if e.cost is None:
        return "–" if e.state == "unchanged" else "n/a"
    ceiling = e.cost.ceiling_delta
    stale = " ⏳" if e.cost.stale else ""
    if e.state == "unchanged" and abs(e.cost.delta) < 0.005 and abs(ceiling) < 0.005:
        return "–" + stale
    pct = f" ({e.cost.pct:+.1f}%)" if e.cost.pct is not None and abs(e.cost.delta) >= 0.005 else ""
    # the ceiling (every pool at its maximum) shows what a change permits: a higher max_size costs
    # nothing expected and may cost a lot
    text = usd(e.cost.delta, sign=True) + pct + (f", ceiling {usd(ceiling, sign=True)}" if abs(ceiling) >= 0.005 else "") + stale
    return f"❌ {text}" if e.cost_failing else text


SUMMARY_HEADER = ("environment", "+", "~", "−", "± replace", "moved", "permissions", "policy +new / −fixed", "Δ $/month", "synth hash")


def _quiet(e: EnvReview) -> bool:
    """Nothing to show: no change, no real plan, no cost move, nothing blocking."""
    return e.state == "unchanged" and not e.plans and not e.blocking and (e.cost is None or abs(e.cost.delta) < 0.005)


def unchanged(r: Review) -> list[str]:
    """The environments the summary leaves out ("N environments unchanged")."""
    return [e.env for e in r.envs if _quiet(e)]


def unchanged_text(r: Review) -> str:
    names = unchanged(r)
    if not names:
        return ""
    return f"{len(names)} environment{'s' if len(names) != 1 else ''} unchanged: {', '.join(names)}"


def summary_rows(r: Review) -> list[tuple[str, ...]]:
    """One row per environment the change touches; the unchanged ones are counted, not listed."""
    rows = []
    for e in r.envs:
        if _quiet(e):
            continue
        name = e.env + (" 🔒" if e.protected else "") + (" (new)" if e.state == "new" else " (removed)" if e.state == "removed" else "")
        counts = tuple(_counts(e).split(" | "))
        rows.append((name, *counts, _permissions(e), _policy(e), _cost(e), e.synth_hash[:12] or "–"))
    return rows


@dataclass
class _Section:
    env: str
    title: str
    priority: int  # lower shrinks first
    full: list[str]
    compact: list[str]
    header_full: str
    header_compact: str

    def render(self, level: int) -> str:
        if level >= 2 or not self.full:
            n = len(self.full)
            return f"\n**{self.title}**: {n} row(s) left out to stay under the comment limit.\n" if self.full else ""
        header, rows = (self.header_full, self.full) if level == 0 else (self.header_compact, self.compact)
        return f"\n**{self.title}**\n\n{header}\n" + "\n".join(rows) + "\n"


def _change_rows(c: ResourceChange, full: bool) -> list[str]:
    why = "; ".join(c.reasons)
    if c.blocking:
        why = f"❌ {c.blocking}" + (f"; {why}" if why else "")
    src = "planned" if c.source == "plan" else "predicted"
    head = f"| `{md_cell(c.path)}` | `{c.type}` | {c.label} ({src}) | {md_cell(why) or '–'} |"
    if not full:
        return [head]
    rows = [head]
    shown = c.attrs[:MAX_ATTRS]
    for a in shown:
        mark = {"yes": " ⚠ forces replacement", "plan": " ⚠ replace_paths"}.get(a.forces, f" ⚠ replacement {a.forces}" if a.forces else "")
        rows.append(f"| ↳ `{md_cell(a.path)}` | | {_v(a.before)} → {_v(a.after)}{mark} | |")
    if len(c.attrs) > MAX_ATTRS:
        rows.append(f"| ↳ … {len(c.attrs) - MAX_ATTRS} more attribute(s) in the JSON report | | | |")
    if c.citation and c.action == "replace" and c.source == "offline":
        rows.append(f"| ↳ source | | {md_cell(c.citation)} | |")
    return rows


def _sections(e: EnvReview, everything: bool) -> list[_Section]:
    res_header = "| resource | type | change | why |\n|---|---|---|---|"
    out = []
    groups = [
        ("replacements", 9, [c for c in e.changes if c.action == "replace"]),
        ("destroyed", 8, [c for c in e.changes if c.action == "delete"]),
        ("moved (renamed construct ids)", 3, [c for c in e.changes if c.action == "move"]),
        ("created", 2, [c for c in e.changes if c.action == "create"]),
        ("updated in place", 1, [c for c in e.changes if c.action == "update"]),
    ]
    for title, prio, changes in groups:
        if not changes:
            continue
        if title.startswith("moved"):
            full = []
            for c in changes:
                full.append(
                    f"| `{md_cell(c.path)}` | `{c.type}` | `{c.moved_from}` → `{c.address}` | "
                    f"`moved {{ from = {c.moved_from}, to = {c.address} }}` or `{md_cell(c.move_call())}` |"
                )
            compact = [f"| `{md_cell(c.path)}` | `{c.type}` | moved | |" for c in changes]
            out.append(
                _Section(
                    e.env,
                    f"{e.env}: {title}",
                    prio,
                    full,
                    compact,
                    "| resource | type | address | keep it with |\n|---|---|---|---|",
                    res_header,
                )
            )
            continue
        full = [row for c in changes for row in _change_rows(c, True)]
        compact = [row for c in changes for row in _change_rows(c, False)]
        out.append(_Section(e.env, f"{e.env}: {title} ({len(changes)})", prio, full, compact, res_header, res_header))
    if e.permissions:
        rows, broad = [], []
        for p in sorted(e.permissions, key=lambda p: (not p.broadening, p.change, p.grant.owner)):
            g = p.grant
            flag = "⚠ " + ", ".join(p.flags) if p.flags else ""
            cond = f" if {_v(g.condition, 40)}" if g.condition else ""
            row = (
                f"| {'+' if p.change == 'added' else '−'} | {g.kind} | `{md_cell(g.owner)}` | {_v(g.principal, 50)} | "
                f"{g.effect} {_v(g.action, 50)} on {_v(g.resource, 50)}{cond} | {flag} |"
            )
            rows.append(row)
            if p.broadening:
                broad.append(row)
        head = "| | kind | granted by | principal | grant | broadening |\n|---|---|---|---|---|---|"
        out.append(_Section(e.env, f"{e.env}: permissions ({len(rows)})", 7, rows, broad or rows[:20], head, head))
    if e.policy_introduced or e.policy_fixed:
        rows = [f"| ❌ new | {f.check} | {f.severity} | `{md_cell(f.path)}` | {md_cell(f.title)} |" for f in e.policy_introduced or []]
        rows += [f"| ✅ fixed | {f.check} | {f.severity} | `{md_cell(f.path)}` | {md_cell(f.title)} |" for f in e.policy_fixed or []]
        head = "| | check | severity | resource | title |\n|---|---|---|---|---|"
        out.append(_Section(e.env, f"{e.env}: policy", 6, rows, rows[: len(e.policy_introduced or [])] or rows[:10], head, head))
    if e.parity is not None and (e.parity.unexplained or (everything and e.parity.differences)):
        p = e.parity
        rows = []
        shown = p.differences if everything else p.unexplained
        for d in sorted(shown, key=lambda d: (d.explained, d.resource, d.attribute)):
            why = ", ".join(f"`{x}`" for x in d.explained_by) if d.explained else "❌ not declared"
            a, b = (_v(v, 40) for v in d.sides())
            rows.append(
                f"| `{md_cell(d.resource)}` | {('`' + md_cell(d.attribute) + '`') if d.attribute else '(resource)'} | {a} | {b} | {why} |"
            )
        head = f"| resource | attribute | {p.env_a} | {p.env_b} | explained by |\n|---|---|---|---|---|"
        title = f"{e.env}: parity with {p.env_b} ({len(p.differences)} differences, {len(p.unexplained)} not declared"
        title += ")" if everything else "; the declared ones are in the full report)"
        out.append(_Section(e.env, title, 5, rows, rows[: len(p.unexplained)], head, head))
    if e.cost is not None and e.cost.items:
        rows = [
            f"| `{md_cell(i.path)}` | {md_cell(i.item)} | {i.change} | {usd(i.base)} | {usd(i.head)} | {usd(i.delta, sign=True)} "
            f"| {usd(i.ceiling_delta, sign=True)} |"
            for i in e.cost.items
        ]
        head = "| resource | cost item | change | base | head | Δ $/month | Δ ceiling |\n|---|---|---|---:|---:|---:|---:|"
        out.append(_Section(e.env, f"{e.env}: cost items changed ({len(rows)})", 4, rows, rows[:10], head, head))
    return out


def markdown(r: Review, *, limit: int | None = MARKDOWN_LIMIT, full_report: str = "reports/review.md") -> str:
    """The review as Markdown; ``limit=None`` renders everything (the full report)."""
    blocking = r.blocking
    icon = "❌" if blocking else "✅"
    verdict = f"{len(blocking)} blocking finding(s)" if blocking else "nothing blocking"
    plans = [f"{s}={p}" for e in r.envs for s, p in e.plans.items()]
    how = "from real plans for " + ", ".join(plans) + ", offline elsewhere" if plans else "offline, from the synthesized stacks"
    lines = [
        f"## {icon} Infra review: {verdict}",
        "",
        f"`{r.base_label}` → `{r.head_label}`, {how}. 🔒 protected environment (stateful resources must not be destroyed or replaced).",
        "",
        "| " + " | ".join(SUMMARY_HEADER) + " |",
        "|---|---:|---:|---:|---:|---:|---|---|---:|---|",
    ]
    lines += ["| " + " | ".join(md_cell(c) if i else c for i, c in enumerate(row)) + " |" for row in summary_rows(r)]
    if quiet := unchanged_text(r):
        lines += ["", quiet + "."]
    top = [(e.env, t) for e in r.envs for t in e.top]
    if top:
        lines += ["", "### Backend, provider and environment-file changes", ""]
        for env, t in top:
            warn = f" ❌ {t.blocking}" if t.blocking else ""
            lines.append(f"- **{env}** {t.kind}: `{md_cell(t.what)}`: {_v(t.before, 120)} → {_v(t.after, 120)}{warn}")
    if blocking:
        lines += ["", "### Blocking", ""]
        cap = len(blocking) if limit is None else MAX_BLOCKING
        lines += [f"- ❌ {md_cell(b)}" for b in blocking[:cap]]
        if len(blocking) > cap:
            lines.append(f"- … {len(blocking) - cap} more; {FULL_REPORT_HINT.format(path=full_report)}")
    if r.notes:
        lines += ["", "### Notes", ""] + [f"- {n}" for n in r.notes]
    head = "\n".join(lines) + "\n"
    sections = [s for e in r.envs for s in _sections(e, limit is None)]
    level = {id(s): 0 for s in sections}
    if limit is not None:
        footer_room = 400
        cache: dict[tuple[int, int], int] = {}

        def size(s: _Section) -> int:
            key = (id(s), level[id(s)])
            if key not in cache:
                cache[key] = len(s.render(level[id(s)]))
            return cache[key]

        def total() -> int:
            return len(head) + sum(size(s) for s in sections) + len(r.envs) * 120 + footer_room

        order = sorted(sections, key=lambda s: s.priority)
        for target in (1, 2):
            for s in order:
                if total() <= limit:
                    break
                level[id(s)] = target
    body = ""
    for e in r.envs:
        mine = [s for s in sections if s.env == e.env]
        if not mine:
            continue
        counts = ", ".join(
            f"{e.count(a)} {w}"
            for a, w in (
                ("create", "to create"),
                ("update", "to update"),
                ("delete", "to destroy"),
                ("replace", "to replace"),
                ("move", "moved"),
            )
            if e.count(a)
        )
        body += f"\n<details><summary><b>{e.env}</b>: {counts or 'details'}</summary>\n"
        body += "".join(s.render(level[id(s)]) for s in mine)
        body += "\n</details>\n"
    shrunk = [s for s in sections if level[id(s)] > 0]
    footer = ""
    if shrunk:
        footer = (
            f"\n_{len(shrunk)} section(s) were shortened to stay under {limit:,} characters "
            f"({', '.join(s.title for s in shrunk[:6])}{'…' if len(shrunk) > 6 else ''}); {FULL_REPORT_HINT.format(path=full_report)}._\n"
        )
    hashes = "\n<sub>synth hashes: " + ", ".join(f"{e.env} `{e.synth_hash[:12]}`" for e in r.envs if e.synth_hash) + "</sub>\n"
    return head + body + footer + hashes


def to_json(r: Review) -> str:
    return json.dumps(r.to_dict(), indent=2, default=str)


def tables(r: Review) -> list[Table]:
    t = Table(*SUMMARY_HEADER, title=f"review {r.base_label} → {r.head_label}", title_justify="left")
    for row in summary_rows(r):
        t.add_row(*row)
    if quiet := unchanged_text(r):
        t.caption = quiet
    out = [t]
    top = [(e.env, x) for e in r.envs for x in e.top]
    if top:
        tt = Table(
            "environment", "kind", "what", "before", "after", title="backend, provider and environment-file changes", title_justify="left"
        )
        for env, x in top:
            tt.add_row(env, x.kind, x.what, str(x.before), str(x.after))
        out.append(tt)
    changes = [(e.env, c) for e in r.envs for c in e.changes if c.action in ("replace", "delete", "move") or c.blocking]
    if changes:
        tc = Table("environment", "resource", "type", "change", "why", title="replacements, destroys and moves", title_justify="left")
        for env, c in changes:
            tc.add_row(env, c.path, c.type, c.label, c.blocking or "; ".join(c.reasons) or (f"from {c.moved_from}" if c.moved_from else ""))
        out.append(tc)
    return out
