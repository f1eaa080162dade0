"""A reader of synthesized stacks (``cdktf.out/stacks/<stack>/cdk.tf.json``).

Every tool after synth (summary, policy, cost, review) reads stacks through this module, never the
stack objects, so it works on any cdktf output: base or head, here or in CI.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.errors import NotSynthesized
from infra.git import ROOT

DEFAULT_OUTDIR = ROOT / "cdktf.out"


@dataclass(frozen=True)
class Resource:
    type: str
    name: str  # the Terraform name (cdktf's construct path with a hash)
    values: dict[str, Any] = field(repr=False)

    @property
    def address(self) -> str:
        return f"{self.type}.{self.name}"

    @property
    def path(self) -> str:
        """The construct path (``dev/aws-eks/cluster``): stable, readable, independent of the hash."""
        meta = self.values.get("//", {}).get("metadata", {})
        return str(meta.get("path", self.address))

    def get(self, dotted: str, default: Any = None) -> Any:
        """``get("scaling_config.min_size")``; single-item lists of blocks are stepped through."""
        current: Any = self.values
        for part in dotted.split("."):
            if isinstance(current, list) and len(current) == 1:
                current = current[0]
            if not isinstance(current, dict) or part not in current:
                return default
            current = current[part]
        return current


@dataclass(frozen=True)
class Stack:
    name: str
    path: Path
    raw: dict[str, Any] = field(repr=False)

    @property
    def resources(self) -> list[Resource]:
        return [
            Resource(rtype, name, values)
            for rtype, by_name in sorted(self.raw.get("resource", {}).items())
            for name, values in sorted(by_name.items())
        ]

    def of_type(self, rtype: str) -> list[Resource]:
        return [r for r in self.resources if r.type == rtype]

    def by_reference(self, ref: str) -> Resource | None:
        """The resource a ``${type.name.attr}`` reference points at."""
        inner = ref.removeprefix("${").removesuffix("}").split(".")
        if len(inner) < 2:
            return None
        values = self.raw.get("resource", {}).get(inner[0], {}).get(inner[1])
        return Resource(inner[0], inner[1], values) if values is not None else None

    @property
    def backend(self) -> dict[str, Any]:
        return dict(self.raw.get("terraform", {}).get("backend", {}))

    @property
    def providers(self) -> dict[str, Any]:
        return dict(self.raw.get("terraform", {}).get("required_providers", {}))


def provider_regions(stack: Stack) -> dict[str, str]:
    """The region each cloud's (first) provider block names: ``{"aws": "us-east-1", "gcp": "us-central1"}``."""
    regions = {}
    for cloud, provider in (("aws", "aws"), ("gcp", "google")):
        blocks = stack.raw.get("provider", {}).get(provider)
        block = blocks[0] if isinstance(blocks, list) and blocks else blocks
        if isinstance(block, dict) and isinstance(block.get("region"), str):
            regions[cloud] = block["region"]
    return regions


def load_stack(path: Path) -> Stack:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotSynthesized(f"{path}: not found; run `make synth` (or `infra synth`) first") from None
    return Stack(path.parent.name, path, raw)


def load_stacks(outdir: Path, names: list[str] | None = None) -> Iterator[Stack]:
    manifest_path = outdir / "manifest.json"
    if not manifest_path.exists():
        raise NotSynthesized(f"{outdir}: no synthesized output; run `make synth` (or `infra synth`) first")
    manifest = json.loads(manifest_path.read_text())
    for name, entry in manifest["stacks"].items():
        if names is None or name in names:
            yield load_stack(outdir / entry["synthesizedStackPath"])


def env_of(stack_name: str) -> str:
    """The environment a stack belongs to: ``production-workloads`` -> ``production``."""
    return stack_name.split("-", 1)[0]


def stacks_by_env(outdir: Path, wanted: Iterable[str]) -> dict[str, list[Stack]]:
    """The synthesized stacks of each wanted environment; an environment without any is an error."""
    all_stacks = list(load_stacks(outdir))
    by_env = {name: [s for s in all_stacks if env_of(s.name) == name] for name in wanted}
    for name, stacks in by_env.items():
        if not stacks:
            raise NotSynthesized(f"{outdir}: no stack of environment {name!r}; run `make synth`")
    return by_env


def is_complete(outdir: Path) -> bool:
    """``outdir`` holds a manifest and every stack it lists."""
    manifest = outdir / "manifest.json"
    if not manifest.exists():
        return False
    stacks = json.loads(manifest.read_text())["stacks"]
    return all((outdir / s["synthesizedStackPath"]).exists() for s in stacks.values())


def list_stacks(outdir: Path) -> list[str]:
    manifest = json.loads((outdir / "manifest.json").read_text())
    return list(manifest["stacks"])


def stack_json_path(outdir: Path, stack: str) -> Path:
    return outdir / "stacks" / stack / "cdk.tf.json"


def apply_order(outdir: Path, env: str) -> list[Stack]:
    """``env``'s stacks, each after the stacks it depends on (the manifest's ``dependencies``: cdktf
    writes them from cross-stack references): ``<env>-registries``, ``<env>``, ``<env>-workloads``."""
    manifest = json.loads((outdir / "manifest.json").read_text()) if (outdir / "manifest.json").exists() else None
    stacks = {s.name: s for s in load_stacks(outdir) if env_of(s.name) == env}
    if manifest is None or not stacks:
        raise NotSynthesized(f"{outdir}: no stack of environment {env!r}; run `make synth`")
    deps = {name: [d for d in manifest["stacks"][name].get("dependencies") or [] if d in stacks] for name in stacks}
    order: list[str] = []
    while len(order) < len(stacks):
        ready = sorted(n for n in stacks if n not in order and all(d in order for d in deps[n]))
        if not ready:
            raise NotSynthesized(f"{outdir}: the stacks of {env} depend on each other in a cycle: {deps}")
        order.append(ready[0])
    return [stacks[n] for n in order]
