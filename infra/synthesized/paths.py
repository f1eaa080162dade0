"""JSON paths into a resource's values: ``scaling_config.min_size``, ``subnet_ids[0]``, and ``{}`` to
step into a JSON or YAML document held in a string (an IAM policy, a Helm release's values)."""

from __future__ import annotations

import json
from typing import Any

import yaml

META = "//"  # cdktf's metadata block on every resource
IGNORED = frozenset({META, "depends_on"})  # depends_on follows construct ids; it changes nothing in the cloud


def decode(text: str) -> Any:
    """The document a string holds (an IAM policy's JSON, a Helm release's YAML values), else None."""
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            doc = json.loads(text)
        except ValueError:
            return None
        return doc if isinstance(doc, (dict, list)) else None
    if "\n" in text and ":" in text:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError:
            return None
        return doc if isinstance(doc, dict) else None
    return None


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf paths of a resource's values: ``{"scaling_config.min_size": 1, "subnet_ids[0]": ...}``."""
    out: dict[str, Any] = {}
    if isinstance(value, dict):
        if not value and prefix:
            out[prefix] = {}
        for key in sorted(value):
            if not prefix and key in IGNORED:
                continue
            out.update(flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(value, list):
        if not value and prefix:
            out[prefix] = []
        for i, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{i}]"))
    elif isinstance(value, str) and prefix and (doc := decode(value)) is not None:
        out.update(flatten(doc, prefix + "{}"))
    else:
        out[prefix] = value
    return out


def path_text(steps: list[Any]) -> str:
    """A plan's path steps (``["node_config", 0, "machine_type"]``) as ``node_config[0].machine_type``."""
    out = ""
    for step in steps:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out
