"""One readable snapshot per environment's synthesized JSON, so a reviewer sees what changed.

Resources are keyed by Terraform address (the construct id is part of it: a renamed construct
shows up as one address removed and one added). Accept a reviewed change with `make snapshots`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from infra.synthesized.reader import list_stacks, load_stack

SNAPSHOTS = Path(__file__).resolve().parent.parent / "snapshots"


def normalized(path: Path) -> dict[str, Any]:
    stack = load_stack(path)
    raw = stack.raw
    resources = {}
    for r in stack.resources:
        values = {k: v for k, v in r.values.items() if k != "//"}
        resources[r.address] = values
    return {
        "terraform": raw.get("terraform", {}),
        "providers": sorted(raw.get("provider", {})),
        "resources": resources,
        "data": sorted(f"{t}.{n}" for t, by_name in raw.get("data", {}).items() for n in by_name),
        "outputs": sorted(raw.get("output", {})),
    }


@pytest.mark.parametrize(
    "stack", [f"{env}{kind}" for kind in ("", "-registries", "-workloads") for env in ("dev", "staging", "production")]
)
def test_snapshot(synth_out: Path, stack: str) -> None:
    current = json.dumps(normalized(synth_out / "stacks" / stack / "cdk.tf.json"), indent=2, sort_keys=True) + "\n"
    snapshot = SNAPSHOTS / f"{stack}.json"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1" or not snapshot.exists():
        snapshot.write_text(current)
        if os.environ.get("CI"):
            pytest.fail(f"{snapshot} was missing in CI; run `make snapshots` and commit it")
    assert current == snapshot.read_text(), f"{stack} changed; review `git diff {snapshot}` after `make snapshots`"


def test_every_stack_has_a_snapshot(synth_out: Path) -> None:
    assert {p.stem for p in SNAPSHOTS.glob("*.json")} == set(list_stacks(synth_out))
