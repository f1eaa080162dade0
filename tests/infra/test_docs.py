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


def test_monitoring_thresholds_table_matches_the_environment_files() -> None:
    """docs/monitoring.md's table of thresholds says what the environment files say."""
    from environments.loader import load_environments
    from tests.conftest import ROOT

    fields = {
        "Lambda p99 duration objective (ms)": "latency_p99_ms",
        "Lambda error rate (% of invocations, 5 min)": "error_rate_pct",
        "Lambda throttles (per 5 min)": "throttles_per_5min",
        "GPU pool at max size for (min)": "gpu_at_max_minutes",
        "node not ready for (min)": "nodes_not_ready_minutes",
        "log retention (days)": "log_retention_days",
    }
    envs = load_environments()
    rows = [line for line in (ROOT / "docs" / "monitoring.md").read_text().splitlines() if line.startswith("| ")]
    header = [c.strip() for c in rows[0].strip("|").split("|")][1:]
    seen = set()
    for line in rows[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] not in fields:
            continue
        seen.add(cells[0])
        for env, cell in zip(header, cells[1:], strict=True):
            assert float(cell) == float(getattr(envs[env].monitoring, fields[cells[0]])), (cells[0], env)
    assert seen == set(fields)
