"""``placeholder``: values the repository ships as examples (preflight.yaml ``placeholders``), left
in the environment file: each is a failure naming the field and the file."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from environments.schema import Environment
from infra.preflight.report import Report, facts


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string (or number) in ``value`` with its field path (``aws.network.zones[0]``)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from leaves(item, f"{path}[{i}]")
    elif isinstance(value, str | int) and not isinstance(value, bool):
        yield path, str(value)


def check_placeholders(env: Environment, file: Path, report: Report) -> None:
    rules = [(re.compile(p["pattern"]), p["what"], p.get("fields")) for p in facts()["placeholders"]]
    found = False
    for path, value in leaves(env.model_dump(mode="json", exclude_defaults=False)):
        for pattern, what, fields in rules:
            if fields and not any(fnmatch.fnmatchcase(path, f.replace("[*]", "[[]*[]]")) for f in fields):
                continue
            if pattern.search(value):
                found = True
                report.fail("placeholder", path, f"{value!r} is {what}", f"replace {path} in {file}")
                break
    if not found:
        report.ok("placeholder", str(file), "no example values left")
