"""Outside facts the schema checks against, read once from ``facts.yaml`` (which cites its sources)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

FACTS_FILE = Path(__file__).with_name("facts.yaml")


@functools.cache
def _facts() -> dict[str, Any]:
    with FACTS_FILE.open(encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.safe_load(fh)
    return data


@dataclass(frozen=True)
class AwsGpu:
    """What an EC2 GPU instance type carries."""

    model: str
    count: int
    arch: str  # x86_64 | arm64
    vcpus: int
    memory_gib: int


_AWS_TYPE = re.compile(r"^(?P<family>[a-z0-9-]+)\.(?P<size>[a-z0-9]+)$")


def aws_gpu(instance_type: str) -> AwsGpu | None:
    """The GPU of an EC2 instance type, or None when the type has no GPU (or is unknown)."""
    m = _AWS_TYPE.match(instance_type)
    if not m:
        return None
    family = _facts()["aws_gpu_instances"]["families"].get(m["family"])
    if family is None or m["size"] not in family["sizes"]:
        return None
    gpus, vcpus, memory = family["sizes"][m["size"]]
    return AwsGpu(model=family["gpu"], count=int(gpus), arch=family["arch"], vcpus=int(vcpus), memory_gib=int(memory))


def eks_gpu_ami_types() -> dict[str, dict[str, Any]]:
    types: dict[str, dict[str, Any]] = _facts()["eks_gpu_ami_types"]["types"]
    return types


def gcp_machine_gpu(machine_type: str) -> tuple[str, int] | None:
    """(accelerator type, built-in count) for an accelerator-optimized machine, else None."""
    facts = _facts()["gcp_accelerator_machines"]
    count = facts["machines"].get(machine_type)
    if count is None:
        return None
    for prefix, accel in facts["families"].items():
        if machine_type.startswith(prefix + "-"):
            return str(accel), int(count)
    return None


def gcp_n1_attachable() -> list[str]:
    return list(_facts()["gcp_accelerator_machines"]["n1_attachable"])


def gcp_known_accelerators() -> list[str]:
    facts = _facts()["gcp_accelerator_machines"]
    return sorted(set(facts["families"].values()) | set(facts["n1_attachable"]))


def gke_zone_count(location: str, pool_zones: list[str] | None = None, cluster_zones: list[str] | None = None) -> tuple[int, str]:
    """How many zones a GKE node pool runs in, and why: the pool's ``node_locations``, else its
    cluster's, else one for a zonal location (``us-central1-a``) and the regional default (three) for
    a region. GKE's per-zone autoscaling limits multiply by it. The one rule for every reader (the
    stacks' alarms, the summary, the cost, the policy)."""
    if pool_zones:
        return len(pool_zones), f"{len(pool_zones)} zones"
    if cluster_zones:
        return len(cluster_zones), f"{len(cluster_zones)} zones of the cluster"
    if re.fullmatch(r"[a-z]+-[a-z]+\d+-[a-z]", location):
        return 1, "zonal"
    count = int(_facts()["gke_regional_default_zones"]["count"])
    return count, f"{count} zones (regional default)"


@dataclass(frozen=True)
class EksVersion:
    version: str
    standard_until: date
    extended_until: date

    def support_until(self, support_type: str) -> date:
        return self.extended_until if support_type == "EXTENDED" else self.standard_until


def eks_kubernetes_versions() -> dict[str, EksVersion]:
    table = _facts()["eks_kubernetes_versions"]["versions"]
    return {v: EksVersion(v, row["standard_until"], row["extended_until"]) for v, row in table.items()}


def eks_support_margin_days() -> int:
    return int(_facts()["eks_kubernetes_versions"]["margin_days"])


def cluster_autoscaler(kubernetes_version: str) -> tuple[str, str] | None:
    """(chart version, image tag) of the Cluster Autoscaler for a Kubernetes minor, or None."""
    row = _facts()["cluster_autoscaler"]["versions"].get(kubernetes_version)
    return (str(row["chart"]), str(row["image"])) if row else None


def nvidia_device_plugin_chart() -> str:
    return str(_facts()["nvidia_device_plugin"]["chart"])


def aws_regions() -> list[str]:
    return list(_facts()["aws_regions"]["regions"])


def gcp_regions() -> list[str]:
    return list(_facts()["gcp_regions"]["regions"])
