"""Google prices for ``infra cost refresh``: the Cloud Billing Catalog API (``services/{id}/skus``).

The client is google-cloud-billing's ``CloudCatalogClient`` on the REST transport, made by
:mod:`infra.clouds.gcp` like every other Google client here (``GOOGLE_API_ENDPOINT`` points it at
a local server with anonymous credentials): the same paging, retries and credentials as the other
clients, rather than a second, hand-written HTTP path. Each service's SKUs are read once a run.

A machine type's price is the sum of its SKUs: vCPUs × the family's core SKU + GiB × its RAM SKU
(+ the GPUs an accelerator-optimized machine carries × the GPU SKU), the counts from the catalog's
``machine_shapes``. SKU descriptions are matched as the catalog words them ("G2 Instance Core
running in Americas", "Spot Preemptible ...", "Commitment v1: G2 Cpu in Americas for 1 Year"), with
the region in the SKU's ``serviceRegions``; the SKU ids go into the entry's ``ref``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from infra.clouds import gcp
from infra.cost.catalog import Catalog
from infra.cost.refresh import Miss, Quote, RefreshError, Want

SOURCE = "gcp-billing-catalog-api"
SERVICES = {  # service ids of the Cloud Billing Catalog
    "compute": "6F81-5844-456A",
    "gke": "CCD8-9BF1-090E",
    "networking": "E505-1604-58F8",
    "storage": "95FF-2EF5-5EA1",
}
# GPU names as SKU descriptions spell them
GPUS = {
    "nvidia-l4": "Nvidia L4 GPU",
    "nvidia-tesla-t4": "Nvidia Tesla T4 GPU",
    "nvidia-tesla-v100": "Nvidia Tesla V100 GPU",
    "nvidia-tesla-a100": "Nvidia Tesla A100 GPU",
    "nvidia-a100-80gb": "Nvidia Tesla A100 80GB GPU",
    "nvidia-h100-80gb": "Nvidia H100 80GB GPU",
}
# SKUs that are not the plain price of the thing: other products sold on the same resources
EXCLUDE = re.compile(r"DWS|Calendar Mode|Sole Tenancy|Custom|Reserved|Virtual Workstation|Extended", re.IGNORECASE)
USAGE = {"gce": "OnDemand", "spot": "Preemptible", "commit-1y": "Commit1Yr", "commit-3y": "Commit3Yr"}
YEARS = {"commit-1y": 1, "commit-3y": 3}
# (service, description pattern, usage unit) of the other keys the stacks use
SIMPLE = {
    "disk/pd-balanced": ("compute", r"^Balanced PD Capacity", "GiBy.mo"),
    "disk/pd-standard": ("compute", r"^Storage PD Capacity", "GiBy.mo"),
    "disk/pd-ssd": ("compute", r"^SSD backed PD Capacity", "GiBy.mo"),
    "nat/gb": ("networking", r"^Networking Cloud NAT Data Processing", "GiBy"),
    "nat/ip-hour": ("networking", r"^Networking Cloud NAT IP Usage", "h"),
    "network/internet-egress": ("compute", r"^Network Internet (Egress|Data Transfer Out) from Americas to Americas", "GiBy"),
    "gcs/standard-storage": ("storage", r"^Standard Storage", "GiBy.mo"),
    "gke/cluster": ("gke", r"^Regional Kubernetes Clusters", "h"),
}


@dataclass(frozen=True)
class Sku:
    sku_id: str
    description: str
    usage_type: str
    regions: tuple[str, ...]
    unit: str
    price: float  # the first non-zero tier
    free_first: float  # usage below that tier (a free tier), in the unit

    @classmethod
    def of(cls, sku: Any) -> Sku:
        info = sku.pricing_info[0] if sku.pricing_info else None
        expression = info.pricing_expression if info is not None else None
        price, start = 0.0, 0.0
        if expression is not None:
            for rate in sorted(expression.tiered_rates, key=lambda r: r.start_usage_amount):
                value = int(rate.unit_price.units or 0) + rate.unit_price.nanos / 1e9
                if value > 0:
                    price, start = value, float(rate.start_usage_amount)
                    break
        return cls(
            str(sku.sku_id),
            str(sku.description),
            str(sku.category.usage_type),
            tuple(sku.service_regions),
            str(expression.usage_unit) if expression is not None else "",
            price,
            start,
        )


class GcpPrices:
    cloud = "gcp"

    def __init__(self) -> None:
        self._skus: dict[str, list[Sku]] = {}
        self._client: Any = None

    def check(self) -> None:
        import os

        if os.environ.get(gcp.ENDPOINT_ENV):
            return  # a local server: anonymous credentials
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError

        try:
            google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-billing.readonly"])
        except DefaultCredentialsError as exc:
            raise RefreshError(
                f"GCP: no Application Default Credentials ({exc}); run `gcloud auth application-default login`, "
                "or refresh the other cloud only with --no-gcp"
            ) from None

    def skus(self, service: str) -> list[Sku]:
        if service not in self._skus:
            from google.api_core.exceptions import GoogleAPIError
            from google.cloud import billing_v1

            if self._client is None:
                self._client = gcp.client(billing_v1.CloudCatalogClient)
            try:
                pages = self._client.list_skus(
                    request={"parent": f"services/{SERVICES[service]}", "currency_code": "USD", "page_size": 5000}
                )
                self._skus[service] = [Sku.of(s) for s in pages]
            except GoogleAPIError as exc:
                raise RefreshError(f"Cloud Billing Catalog API ({service}): {exc}; nothing written") from None
        return self._skus[service]

    def find(self, service: str, pattern: str, usage: str, region: str, unit: str) -> list[Sku]:
        regex = re.compile(pattern)
        return [
            s
            for s in self.skus(service)
            if regex.search(s.description)
            and not EXCLUDE.search(s.description)
            and s.usage_type == usage
            and (region in s.regions or "global" in s.regions)
            and s.unit == unit
            and s.price > 0
        ]

    def one(self, w: Want, service: str, pattern: str, usage: str, unit: str, what: str) -> tuple[Sku | None, Miss | None]:
        found = self.find(service, pattern, usage, w.region, unit)
        if service == "storage":  # a regional bucket's price: the SKU of that region alone
            found = [s for s in found if s.regions == (w.region,)] or found
        if not found:
            return None, Miss(
                w.cloud, w.region, w.key, "unlisted", f"the Cloud Billing Catalog lists no {usage} SKU for {what} in {w.region}"
            )
        if len({round(s.price, 12) for s in found}) > 1:
            ids = ", ".join(f"{s.sku_id} ({s.description})" for s in found[:4])
            return None, Miss(w.cloud, w.region, w.key, "refused", f"{len(found)} SKUs with different prices match {what}: {ids}")
        return found[0], None

    def fetch(self, wants: Sequence[Want], catalog: Catalog) -> tuple[list[Quote], list[Miss]]:
        quotes: list[Quote] = []
        misses: list[Miss] = []
        for w in wants:
            scenario, _, rest = w.key.partition("/")
            if w.key.startswith("gce/") or (scenario in ("spot", "commit-1y", "commit-3y") and rest.startswith("gce/")):
                machine = w.key.rsplit("/", 1)[1]
                kind = "gce" if scenario == "gce" else scenario
                quote, miss = self._machine(w, kind, machine, catalog)
            elif w.key.startswith("gpu/"):
                quote, miss = self._gpu(w, w.key.split("/", 1)[1])
            elif w.key in SIMPLE:
                service, pattern, unit = SIMPLE[w.key]
                sku, miss = self.one(w, service, pattern, "OnDemand", unit, w.key)
                quote = None
                if sku is not None:
                    note = f"first {sku.free_first:g} {sku.unit} free" if sku.free_first else ""
                    unit_name = w.current.unit if w.current else sku.unit
                    quote = Quote(w.cloud, w.region, w.key, sku.price, unit_name, SOURCE, f"sku {sku.sku_id} ({sku.description})", note)
            else:
                quote, miss = None, Miss(w.cloud, w.region, w.key, "skipped", "not a price the Cloud Billing Catalog is asked for here")
            quotes += [quote] if quote else []
            misses += [miss] if miss else []
        return quotes, misses

    def _gpu(self, w: Want, gpu: str) -> tuple[Quote | None, Miss | None]:
        name = GPUS.get(gpu)
        if name is None:
            return None, Miss(w.cloud, w.region, w.key, "skipped", f"no SKU description known for GPU {gpu}")
        sku, miss = self.one(w, "compute", rf"^{re.escape(name)} running in", "OnDemand", "h", f"{gpu} GPUs")
        if sku is None:
            return None, miss
        return Quote(w.cloud, w.region, w.key, sku.price, "gpu-hour", SOURCE, f"sku {sku.sku_id} ({sku.description})"), None

    def _machine(self, w: Want, kind: str, machine: str, catalog: Catalog) -> tuple[Quote | None, Miss | None]:
        """A machine type's price under ``kind`` (gce = on-demand, spot, commit-1y, commit-3y): core and
        RAM SKUs of its family times its shape, plus its built-in GPUs."""
        shape = catalog.shapes.get(machine)
        if shape is None:
            return None, Miss(
                w.cloud, w.region, w.key, "skipped", f"no shape for {machine} in the catalog's machine_shapes: not summed from SKUs"
            )
        vcpus, memory = shape
        entry = catalog.find(w.cloud, w.region, f"gce/{machine}")
        gpus = entry.gpus if entry is not None else None
        family = machine.split("-", 1)[0].upper()
        usage = USAGE[kind]
        parts = [("core", vcpus, self._pattern(kind, family, "core")), ("ram", memory, self._pattern(kind, family, "ram"))]
        if gpus:
            name = GPUS.get(gpus[0])
            if name is None:
                return None, Miss(w.cloud, w.region, w.key, "skipped", f"no SKU description known for GPU {gpus[0]}")
            parts.append(("gpu", gpus[1], self._gpu_pattern(kind, name)))
        total, refs = 0.0, []
        for label, count, pattern in parts:
            sku, miss = self.one(w, "compute", pattern, usage, "h" if label != "ram" else "GiBy.h", f"{machine} {label} ({kind})")
            if sku is None:
                return None, miss
            total += count * sku.price
            refs.append(f"{label} {sku.sku_id} × {count:g}")
        return Quote(w.cloud, w.region, w.key, total, "instance-hour", SOURCE, " + ".join(refs)), None

    @staticmethod
    def _pattern(kind: str, family: str, part: str) -> str:
        if family == "N1":  # N1's SKUs say "Predefined"; its commitments name no family
            if kind in YEARS:
                return rf"^Commitment v1: {'Cpu' if part == 'core' else 'Ram'} in .* for {YEARS[kind]} Years?$"
            word = "Core" if part == "core" else "Ram"
            return rf"^{'Spot Preemptible ' if kind == 'spot' else ''}N1 Predefined Instance {word} running in"
        if kind in YEARS:
            return rf"^Commitment v1: {family} {'Cpu' if part == 'core' else 'Ram'} in .* for {YEARS[kind]} Years?$"
        word = "Core" if part == "core" else "Ram"
        return rf"^{'Spot Preemptible ' if kind == 'spot' else ''}{family} Instance {word} running in"

    @staticmethod
    def _gpu_pattern(kind: str, name: str) -> str:
        if kind in YEARS:
            return rf"^Commitment v1: {re.escape(name)} in .* for {YEARS[kind]} Years?$"
        if kind == "spot":
            return rf"^{re.escape(name)} attached to Spot Preemptible VMs running in"
        return rf"^{re.escape(name)} running in"
