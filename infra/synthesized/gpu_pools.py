"""The GPU pools of a synthesized stack: EKS managed node groups and GKE node pools whose machines
carry GPUs, with what each node carries, the pool's limits and the zones they multiply by. The one
reader of GPU capacity (summary, policy, cost); the zone rule is :func:`environments.facts.gke_zone_count`,
which the stacks' alarms use too."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from environments import facts
from infra.synthesized.reader import Resource, Stack


@dataclass(frozen=True)
class GpuPool:
    stack: str
    resource: Resource
    cloud: Literal["aws", "gcp"]
    name: str  # the node group's / node pool's name
    gpu: str  # the GPU model (nvidia-l4, nvidia-a100, ...)
    gpus_per_node: int
    min_nodes: int | None  # per zone when ``per_zone``
    max_nodes: int | None
    spot: bool
    zones: int  # what per-zone limits multiply by (1 when the limits are the group's total)
    zones_reason: str
    per_zone: bool  # GKE's min/max_node_count count per zone; EKS's and total_*_node_count do not

    @property
    def max_gpus(self) -> int:
        return self.gpus_per_node * (self.max_nodes or 0) * (self.zones if self.per_zone else 1)


def _block(value: object) -> dict[str, object]:
    if isinstance(value, list):
        value = value[0] if value else {}
    return value if isinstance(value, dict) else {}


def gke_pool_zones(stack: Stack, pool: Resource) -> tuple[int, str]:
    """The zones a GKE node pool runs in (for any pool, GPU or not), following its cluster reference."""
    ref = pool.values.get("cluster")
    cluster = stack.by_reference(ref) if isinstance(ref, str) else None
    if cluster is None and isinstance(ref, str):  # a plan: the cluster's name instead of a reference
        cluster = next((c for c in stack.of_type("google_container_cluster") if c.values.get("name") == ref), None)
    own = pool.values.get("location")
    location = own if isinstance(own, str) and not own.startswith("${") else str((cluster.values.get("location") if cluster else "") or "")
    return facts.gke_zone_count(location, pool.values.get("node_locations"), cluster.values.get("node_locations") if cluster else None)


def _limits(r: Resource) -> tuple[int | None, int | None, bool]:
    auto = _block(r.values.get("autoscaling"))
    if auto.get("total_min_node_count") is not None or auto.get("total_max_node_count") is not None:
        return _int(auto.get("total_min_node_count")), _int(auto.get("total_max_node_count")), False
    if auto:
        return _int(auto.get("min_node_count")), _int(auto.get("max_node_count")), True
    fixed = _int(r.values.get("node_count", r.values.get("initial_node_count", 1)))  # no autoscaling: a fixed size
    return fixed, fixed, True


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()) else None


def gpu_pools(stack: Stack) -> Iterator[GpuPool]:
    for r in stack.of_type("aws_eks_node_group"):
        types = [t for t in r.get("instance_types") or [] if isinstance(t, str)]
        gpu = next((g for g in (facts.aws_gpu(t) for t in types) if g is not None), None)
        if gpu is None and "NVIDIA" not in str(r.get("ami_type") or ""):
            continue
        yield GpuPool(
            stack.name,
            r,
            "aws",
            str(r.get("node_group_name") or r.get("node_group_name_prefix") or r.name),
            gpu.model if gpu else "unknown",
            gpu.count if gpu else 0,
            _int(r.get("scaling_config.min_size")),
            _int(r.get("scaling_config.max_size")),
            r.get("capacity_type") == "SPOT",
            1,
            "the group's limits",
            False,
        )
    for r in stack.of_type("google_container_node_pool"):
        machine = str(r.get("node_config.machine_type") or "")
        accelerators = r.get("node_config.guest_accelerator") or []
        builtin = facts.gcp_machine_gpu(machine)
        if not accelerators and builtin is None:
            continue
        accel = accelerators[0] if accelerators else {}
        gpu_type = str(accel.get("type") or (builtin[0] if builtin else "unknown"))
        count = int(accel.get("count") or (builtin[1] if builtin else 0))
        lo, hi, per_zone = _limits(r)
        zones, why = gke_pool_zones(stack, r)
        spot = bool(r.get("node_config.spot") or r.get("node_config.preemptible"))
        yield GpuPool(stack.name, r, "gcp", str(r.get("name") or r.name), gpu_type, count, lo, hi, spot, zones, why, per_zone)
