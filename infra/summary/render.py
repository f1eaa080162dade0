"""Rendering of summaries for people: rich tables on a terminal, Markdown for pull requests."""

from __future__ import annotations

from typing import Any

from infra.summary.model import StackSummary
from infra.tables import Table


def _gpu_rows(s: StackSummary) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for p in s.gpu_pools:
        per_zone = " per zone" if p.cloud == "gcp" else ""
        zones = f" × {p.zones} zones" if p.zones else ""
        rows.append(
            (
                f"{p.cloud}/{p.pool}",
                p.gpu,
                f"{p.gpus_per_node}",
                f"{p.min_nodes}–{p.max_nodes}{per_zone}{zones}",
                "spot" if p.spot else "on-demand",
            )
        )
    return rows


def summaries_tables(summaries: list[StackSummary]) -> list[Table]:
    tables = []
    for s in summaries:
        t = Table(title=f"{s.stack}: {s.total} resources, state {s.backend}", title_justify="left", show_header=True)
        t.add_column("what")
        t.add_column("details")
        t.add_row("resources", ", ".join(f"{k} {v}" for k, v in s.resources.items()))
        for c in s.clusters:
            t.add_row(f"cluster ({c['cloud']})", f"{c['name']} {c['version']}, endpoint {'public' if c['public_endpoint'] else 'private'}")
        for pool, gpu, per_node, nodes, capacity in _gpu_rows(s):
            t.add_row("gpu pool", f"{pool}: {gpu} × {per_node}/node, {nodes} nodes, {capacity}")
        if s.gpu_pools:
            t.add_row("gpu capacity (max)", ", ".join(f"{g} {n}" for g, n in s.gpus_by_type().items()))
        for e in s.endpoints:
            t.add_row(
                "endpoint",
                f"{e['name']}: {e['memory_mb']} MB, {e['architecture']}, reserved {e['reserved_concurrency']}, URL auth {e['url_auth']}",
            )
        for w in s.workloads:
            t.add_row("workload", _workload_text(w))
        tables.append(t)
    return tables


def _workload_text(w: dict[str, Any]) -> str:
    gpus = f", {w['gpus']} GPU/pod" if w["gpus"] else ", CPU"
    return f"{w['name']} ({w['release']}): {w['min_replicas']}–{w['max_replicas']} replicas{gpus}, {w['image']}"


def summaries_markdown(summaries: list[StackSummary]) -> str:
    lines = []
    for s in summaries:
        lines += [f"### {s.stack}", "", f"{s.total} resources; state `{s.backend}`", ""]
        lines += ["| resource type | count |", "| --- | ---: |"]
        lines += [f"| `{k}` | {v} |" for k, v in s.resources.items()]
        if s.clusters:
            lines += ["", "| cluster | cloud | version/channel | endpoint |", "| --- | --- | --- | --- |"]
            lines += [
                f"| {c['name']} | {c['cloud']} | {c['version']} | {'public' if c['public_endpoint'] else 'private'} |" for c in s.clusters
            ]
        if s.gpu_pools:
            lines += ["", "| GPU pool | GPU | per node | nodes | capacity |", "| --- | --- | ---: | --- | --- |"]
            lines += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in _gpu_rows(s)]
        if s.endpoints:
            lines += ["", "| endpoint | memory MB | arch | reserved | URL auth |", "| --- | ---: | --- | ---: | --- |"]
            lines += [
                f"| {e['name']} | {e['memory_mb']} | {e['architecture']} | {e['reserved_concurrency']} | {e['url_auth']} |"
                for e in s.endpoints
            ]
        if s.workloads:
            lines += ["", "| workload | release | replicas | GPUs/pod | image |", "| --- | --- | --- | ---: | --- |"]
            lines += [
                f"| {w['name']} | {w['release']} | {w['min_replicas']}–{w['max_replicas']} | {w['gpus']} | `{w['image']}` |"
                for w in s.workloads
            ]
        lines.append("")
    return "\n".join(lines)
