"""A summary of each synthesized stack: resources by kind, clusters, GPU capacity, endpoints, workloads."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from infra.synthesized.gpu_pools import gpu_pools
from infra.synthesized.reader import Resource, Stack


@dataclass
class GpuCapacity:
    cloud: str
    pool: str
    gpu: str
    gpus_per_node: int
    min_nodes: int
    max_nodes: int
    spot: bool
    zones: int | None = None  # GKE: autoscaling limits are per zone, over this many zones

    @property
    def max_gpus(self) -> int:
        return self.gpus_per_node * self.max_nodes * (self.zones or 1)


@dataclass
class StackSummary:
    stack: str
    resources: dict[str, int]
    clusters: list[dict[str, Any]] = field(default_factory=list)
    gpu_pools: list[GpuCapacity] = field(default_factory=list)
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    workloads: list[dict[str, Any]] = field(default_factory=list)
    backend: str = ""

    @property
    def total(self) -> int:
        return sum(self.resources.values())

    def gpus_by_type(self) -> dict[str, int]:
        """Maximum GPUs per GPU type across the stack's pools."""
        out: Counter[str] = Counter()
        for pool in self.gpu_pools:
            out[pool.gpu] += pool.max_gpus
        return dict(sorted(out.items()))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["total"] = self.total
        data["gpus_by_type"] = self.gpus_by_type()
        return data


def summarize(stack: Stack) -> StackSummary:
    counts = Counter(r.type for r in stack.resources)
    summary = StackSummary(stack=stack.name, resources=dict(sorted(counts.items())))
    backend: tuple[str, dict[str, Any]] = next(iter(stack.backend.items()), ("local", {}))
    kind, conf = backend
    summary.backend = f"{kind}://{conf.get('bucket', '')}/{conf.get('key', conf.get('prefix', ''))}" if conf else kind

    for r in stack.of_type("aws_eks_cluster"):
        summary.clusters.append(
            {
                "cloud": "aws",
                "name": r.get("name"),
                "version": r.get("version"),
                "public_endpoint": bool(r.get("vpc_config.endpoint_public_access")),
            }
        )
    for r in stack.of_type("google_container_cluster"):
        summary.clusters.append(
            {
                "cloud": "gcp",
                "name": r.get("name"),
                "version": r.get("release_channel.channel"),
                "public_endpoint": not r.get("private_cluster_config.enable_private_endpoint", False),
            }
        )

    for pool in gpu_pools(stack):
        summary.gpu_pools.append(
            GpuCapacity(
                cloud=pool.cloud,
                pool=pool.name,
                gpu=pool.gpu,
                gpus_per_node=pool.gpus_per_node,
                min_nodes=pool.min_nodes or 0,
                max_nodes=pool.max_nodes or 0,
                spot=pool.spot,
                zones=pool.zones if pool.per_zone else None,
            )
        )

    urls = {u.get("function_name"): u for u in stack.of_type("aws_lambda_function_url")}
    for r in stack.of_type("aws_lambda_function"):
        ref = "${" + f"{r.address}.function_name" + "}"
        url = urls.get(ref)
        summary.endpoints.append(
            {
                "name": r.get("function_name"),
                "memory_mb": r.get("memory_size"),
                "timeout_s": r.get("timeout"),
                "architecture": (r.get("architectures") or ["x86_64"])[0],
                "reserved_concurrency": r.get("reserved_concurrent_executions"),
                "url_auth": url.get("authorization_type") if url else None,
            }
        )
    summary.workloads = [w for r in stack.of_type("helm_release") if (w := _workload(r)) is not None]
    return summary


def _workload(release: Resource) -> dict[str, Any] | None:
    """A release of our manifests chart: its Deployment and HPA, read back from the values."""
    try:
        manifests = json.loads((release.get("values") or ["{}"])[0]).get("manifests")
    except (ValueError, AttributeError):
        return None
    if not manifests:
        return None
    kinds = {m.get("kind"): m for m in manifests}
    deployment, hpa = kinds.get("Deployment", {}), kinds.get("HorizontalPodAutoscaler", {})
    (container, *_) = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [{}])
    limits = container.get("resources", {}).get("limits", {})
    return {
        "name": f"{release.get('namespace')}/{release.get('name')}",
        "release": release.name,
        "image": container.get("image"),
        "min_replicas": hpa.get("spec", {}).get("minReplicas"),
        "max_replicas": hpa.get("spec", {}).get("maxReplicas"),
        "gpus": int(limits.get("nvidia.com/gpu", 0)),
    }
