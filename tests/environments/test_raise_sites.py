"""Every raise site of the schema has a case in the loader's table that reaches it: a validator
added without a bad input that exercises it fails here, naming the file and line."""

from __future__ import annotations

import ast
import copy
from pathlib import Path
from types import TracebackType

import pytest
import yaml
from pydantic import ValidationError

from environments.loader import ENV_DIR
from environments.schema import Environment
from tests.environments.test_loader import CASES

SCHEMA = ENV_DIR / "schema"
RAISING = {"FieldError", "ValueError"}


def raise_sites() -> set[tuple[str, int]]:
    sites = set()
    for path in sorted(SCHEMA.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and getattr(node.exc.func, "id", None) in RAISING:
                sites.add((path.name, node.lineno))
    return sites


def _site(tb: TracebackType | None) -> tuple[str, int] | None:
    last = None
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).parent == SCHEMA:
            last = (Path(tb.tb_frame.f_code.co_filename).name, tb.tb_lineno)
        tb = tb.tb_next
    return last


def test_the_schema_has_raise_sites() -> None:
    assert len(raise_sites()) >= 40  # the scan itself works (the schema holds ~50)


def test_every_raise_site_has_a_case_that_reaches_it() -> None:
    originals = {f.stem: yaml.safe_load(f.read_text()) for f in ENV_DIR.glob("*.yaml") if f.name != "facts.yaml"}
    reached: set[tuple[str, int]] = set()
    for case, file, mutate, _field in CASES:
        data = copy.deepcopy(originals[file])
        mutate(data)
        try:
            Environment.model_validate(data)
        except ValidationError as err:
            for e in err.errors():
                cause = (e.get("ctx") or {}).get("error")
                site = _site(cause.__traceback__) if isinstance(cause, BaseException) else None
                if site:
                    reached.add(site)
        except Exception as exc:
            pytest.fail(f"case {case!r} crashed the schema: {exc!r}")
    missing = sorted(raise_sites() - reached)
    lines = {name: (SCHEMA / name).read_text().splitlines() for name, _ in missing}
    assert not missing, "raise sites without a case in tests/environments/test_loader.py CASES:\n" + "\n".join(
        f"  environments/schema/{name}:{n}: {lines[name][n - 1].strip()}" for name, n in missing
    )
