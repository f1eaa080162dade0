"""The synth hash: one digest per environment over its stacks' ``cdk.tf.json`` files, one per stack.
What a review records and what a deploy, a smoke record and a promotion compare."""

from __future__ import annotations

import hashlib
from pathlib import Path

from infra.synthesized.reader import Stack


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def synth_hash(stacks: list[Stack]) -> tuple[str, dict[str, str]]:
    """One digest per environment (over its stacks' cdk.tf.json files) and one per stack."""
    per_stack = {s.name: file_hash(s.path) for s in sorted(stacks, key=lambda s: s.name)}
    digest = hashlib.sha256("".join(f"{n} {h}\n" for n, h in per_stack.items()).encode()).hexdigest()
    return (digest if per_stack else ""), per_stack
