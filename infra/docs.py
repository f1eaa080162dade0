"""The environment-file reference (Markdown) and JSON Schema, generated from the pydantic schema.

`make docs` writes them; a test fails when the committed copies are stale.
"""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from environments.schema import Environment

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "environments.md"
JSON_SCHEMA = ROOT / "docs" / "environment.schema.json"


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args if a is not type(None)) + (" (optional)" if type(None) in args else "")
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"map {_type_name(args[0])} → {_type_name(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    return getattr(annotation, "__name__", str(annotation))


def _models(model: type[BaseModel], seen: list[type[BaseModel]]) -> list[type[BaseModel]]:
    if model in seen:
        return seen
    seen.append(model)
    for field in model.model_fields.values():
        for candidate in _walk(field.annotation):
            _models(candidate, seen)
    return seen


def _walk(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _walk(arg)]


def render_reference() -> str:
    lines = [
        "# Environment file reference",
        "",
        "Generated from `environments/schema/` by `make docs`; a test fails when this file is stale.",
        "Unknown keys are rejected. Names, the state key and the tags `environment`, `project` and",
        "`managed-by` are derived from `project` and `name` and cannot be set.",
        "",
    ]
    for model in _models(Environment, []):
        lines += [f"## {model.__name__}", ""]
        doc = (model.__doc__ or "").strip().splitlines()
        if doc and not doc[0].startswith("!!!"):
            lines += [doc[0], ""]
        lines += ["| key | type | default |", "| --- | --- | --- |"]
        for name, field in model.model_fields.items():
            value = field.get_default(call_default_factory=True)
            value = value.model_dump() if isinstance(value, BaseModel) else value
            default = "required" if field.is_required() else f"`{json.dumps(value)}`"
            lines.append(f"| `{name}` | {_type_name(field.annotation)} | {default} |")
        lines.append("")
    return "\n".join(lines)


def render_json_schema() -> str:
    return json.dumps(Environment.model_json_schema(), indent=2, sort_keys=True) + "\n"


def write() -> None:
    REFERENCE.parent.mkdir(exist_ok=True)
    REFERENCE.write_text(render_reference())
    JSON_SCHEMA.write_text(render_json_schema())


if __name__ == "__main__":
    write()
