"""The layout of ``infra/`` (docs/architecture.md): a shared floor every verb stands on, verbs that
never reach into each other for plumbing, and the CLI edge on top. Checked on the import graph
(imports inside functions included)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

INFRA = ROOT / "infra"
# the shared floor: readers of cdktf.out, the change model, git, Markdown, tables, the engine and the
# provider locks every init of it uses, cloud clients
FLOOR = {"errors", "git", "markdown", "tables", "engine", "providers", "synthesized", "changes", "clouds"}
EDGE = {"cli"}
# a verb may use another verb's result, never its plumbing; each such edge says why
COMPOSITION = {
    ("review", "synth"): "a review synthesizes the base and head it compares",
    ("review", "policy"): "a review's policy delta is the policy gate's verdict on base and head",
    ("review", "cost"): "a review's cost delta is infra cost diff",
    ("review", "parity"): "a review shows parity for environments that promote",
    ("cost", "synth"): "cost diff synthesizes its base",
    ("tco", "cost"): "the TCO is built on the monthly estimate",
    ("plan", "review"): "a real plan is shown as a review of its changes",
}


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "infra" else None


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            if node.module == "infra":  # `from infra import engine`
                found |= {f"infra.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


def edges() -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    for path in sorted(INFRA.rglob("*.py")):
        here = path.relative_to(INFRA).parts[0].removesuffix(".py")
        for module in _imports(path):
            there = _room(module)
            if there and there != here and there != "__init__":
                out.setdefault((here, there), []).append(str(path.relative_to(ROOT)))
    return out


def test_the_floor_imports_no_verb() -> None:
    bad = {e: f for e, f in edges().items() if e[0] in FLOOR and e[1] not in FLOOR}
    assert not bad, bad


def test_verbs_use_each_other_only_for_their_results() -> None:
    bad = {e: f for e, f in edges().items() if e[0] not in FLOOR | EDGE and e[1] not in FLOOR and e not in COMPOSITION}
    assert not bad, "a verb imports another verb for plumbing (move it to the floor, or declare the composition):\n" + "\n".join(
        f"  {a} -> {b}: {', '.join(sorted(set(files)))}" for (a, b), files in sorted(bad.items())
    )


def test_no_verb_imports_the_cli() -> None:
    bad = {e: f for e, f in edges().items() if e[1] in EDGE and e[0] not in EDGE}
    assert not bad, bad


def test_review_and_parity_do_not_import_each_other_and_no_verb_cycle() -> None:
    graph = {e for e in edges() if e[0] not in FLOOR | EDGE and e[1] not in FLOOR | EDGE}
    assert ("parity", "review") not in graph
    for a, b in graph:
        assert (b, a) not in graph, f"{a} and {b} import each other"


def test_every_composition_edge_is_still_used() -> None:
    assert set(COMPOSITION) <= set(edges()), set(COMPOSITION) - set(edges())


def test_package_inits_hold_no_logic() -> None:
    """A package's ``__init__`` names its modules and re-exports; the logic lives in named modules
    (docs/architecture.md), so a reader finds ``infra.preflight.run`` instead of a 140-line init."""
    logic = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    holding = sorted(
        str(init.relative_to(ROOT))
        for package in ("infra", "stacks", "environments", "app")
        for init in (ROOT / package).rglob("__init__.py")
        if any(isinstance(node, logic) for node in ast.parse(init.read_text()).body)
    )
    assert holding == []
