"""Build one construct in a bare stack and synthesize it with cdktf's Testing helpers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from cdktf import TerraformStack, Testing


def synth_construct(build: Callable[[TerraformStack], object]) -> dict[str, Any]:
    stack = TerraformStack(Testing.app(), "test")
    build(stack)
    result: dict[str, Any] = json.loads(Testing.synth(stack))
    return result


def resources(synth: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    """The resources of one type, found by type (never by the hashed id)."""
    return list(synth.get("resource", {}).get(rtype, {}).values())


def one(synth: dict[str, Any], rtype: str) -> dict[str, Any]:
    found = resources(synth, rtype)
    assert len(found) == 1, f"expected one {rtype}, found {len(found)}"
    return found[0]
