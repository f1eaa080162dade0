"""VPC with one regional subnet (pod and service secondary ranges), an explicit logged deny of
ingress, Cloud Router and Cloud NAT."""

from __future__ import annotations

from cdktf_cdktf_provider_google.compute_firewall import ComputeFirewall, ComputeFirewallDeny, ComputeFirewallLogConfig
from cdktf_cdktf_provider_google.compute_network import ComputeNetwork
from cdktf_cdktf_provider_google.compute_router import ComputeRouter
from cdktf_cdktf_provider_google.compute_router_nat import ComputeRouterNat, ComputeRouterNatLogConfig
from cdktf_cdktf_provider_google.compute_subnetwork import (
    ComputeSubnetwork,
    ComputeSubnetworkLogConfig,
    ComputeSubnetworkSecondaryIpRange,
)
from constructs import Construct

from environments.schema import Environment

PODS_RANGE = "pods"
SERVICES_RANGE = "services"


class Network(Construct):
    """Exposes ``network`` and ``subnet`` (with the ``pods``/``services`` secondary ranges)."""

    def __init__(self, scope: Construct, id_: str, *, env: Environment) -> None:
        super().__init__(scope, id_)
        assert env.gcp is not None
        cfg = env.gcp.network
        self.network = ComputeNetwork(
            self, "network", name=env.resource_name("vpc"), auto_create_subnetworks=False, routing_mode="REGIONAL"
        )
        self.subnet = ComputeSubnetwork(
            self,
            "subnet",
            name=env.resource_name("nodes"),
            network=self.network.id,
            region=env.gcp.region,
            ip_cidr_range=cfg.subnet_cidr,
            private_ip_google_access=True,
            secondary_ip_range=[
                ComputeSubnetworkSecondaryIpRange(range_name=PODS_RANGE, ip_cidr_range=cfg.pods_cidr),
                ComputeSubnetworkSecondaryIpRange(range_name=SERVICES_RANGE, ip_cidr_range=cfg.services_cidr),
            ],
            log_config=ComputeSubnetworkLogConfig(
                aggregation_interval="INTERVAL_10_MIN", flow_sampling=0.5, metadata="INCLUDE_ALL_METADATA"
            ),
        )
        # GCP's implied deny is neither visible nor logged; GKE adds its own allow rules at priority 1000
        ComputeFirewall(
            self,
            "deny-ingress",
            name=env.resource_name("deny-ingress"),
            network=self.network.id,
            description="Default deny of ingress, logged; higher-priority rules (GKE's) allow what is needed",
            direction="INGRESS",
            priority=65534,
            source_ranges=["0.0.0.0/0"],
            deny=[ComputeFirewallDeny(protocol="all")],
            log_config=ComputeFirewallLogConfig(metadata="EXCLUDE_ALL_METADATA"),
        )
        if cfg.nat:
            router = ComputeRouter(self, "router", name=env.resource_name("router"), network=self.network.id, region=env.gcp.region)
            self.nat = ComputeRouterNat(
                self,
                "nat",
                name=env.resource_name("nat"),
                router=router.name,
                region=env.gcp.region,
                nat_ip_allocate_option="AUTO_ONLY",
                source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
                log_config=ComputeRouterNatLogConfig(enable=True, filter=cfg.nat_log),
            )
