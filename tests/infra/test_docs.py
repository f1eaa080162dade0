"""The generated environment reference and JSON Schema are up to date with the schema."""

from __future__ import annotations

import json

from infra import docs


def test_environment_reference_is_current() -> None:
    assert docs.REFERENCE.read_text() == docs.render_reference(), "docs/environments.md is stale: run `make docs`"


def test_json_schema_is_current_and_forbids_unknown_keys() -> None:
    assert docs.JSON_SCHEMA.read_text() == docs.render_json_schema(), "docs/environment.schema.json is stale: run `make docs`"
    schema = json.loads(docs.JSON_SCHEMA.read_text())
    assert schema["additionalProperties"] is False
    assert all(d.get("additionalProperties") is False for d in schema["$defs"].values() if d.get("type") == "object")
