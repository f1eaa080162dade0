"""``<env>-workloads``: what runs inside an environment's EKS cluster and makes GPU nodes usable.

* the NVIDIA device plugin (Helm) on GPU node groups whose AMI lacks it (AL2023 NVIDIA AMIs ship
  the driver but not the plugin; Bottlerocket NVIDIA AMIs ship both), so pods can request
  ``nvidia.com/gpu``;
* the Cluster Autoscaler (Helm), which scales the GPU groups from zero using the node-template
  tags the environment stack writes, running as the Pod Identity role that stack creates.

It is a separate stack because the Helm provider needs the cluster's endpoint to be configured,
which Terraform cannot do in the same plan that creates the cluster. It finds the cluster by its
derived name and depends on the environment stack, so ``cdktf deploy <env> <env>-workloads``
applies them in order. GKE needs no such stack: GKE installs the driver and runs the plugin.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from cdktf import TerraformStack
from cdktf_cdktf_provider_aws.data_aws_eks_cluster import DataAwsEksCluster
from cdktf_cdktf_provider_aws.provider import AwsProvider
from cdktf_cdktf_provider_helm.provider import HelmProvider, HelmProviderKubernetes, HelmProviderKubernetesExec
from cdktf_cdktf_provider_helm.release import Release
from constructs import Construct

from environments.schema import Environment
from stacks.aws.autoscaler import NAMESPACE, SERVICE_ACCOUNT
from stacks.state import configure_backend


# Chart pins, each the newest this project could confirm (read 2026-11-26):
# nvidia-device-plugin 0.17.2: NVIDIA/k8s-device-plugin issue #1325 (2025-07) names it the latest chart;
# cluster-autoscaler 9.43.1: kubernetes/autoscaler charts/cluster-autoscaler/Chart.yaml @058219f.
# Newer releases exist upstream; bump them in a reviewed pull request.
class Chart(NamedTuple):
    repository: str
    name: str
    version: str


NVIDIA_DEVICE_PLUGIN = Chart("https://nvidia.github.io/k8s-device-plugin", "nvidia-device-plugin", "0.17.2")
CLUSTER_AUTOSCALER = Chart("https://kubernetes.github.io/autoscaler", "cluster-autoscaler", "9.43.1")


def has_workloads(env: Environment) -> bool:
    return env.aws is not None and env.aws.cluster is not None


class WorkloadsStack(TerraformStack):
    def __init__(self, scope: Construct, env: Environment, *, depends_on: TerraformStack) -> None:
        super().__init__(scope, f"{env.name}-workloads")
        assert env.aws is not None and env.aws.cluster is not None
        configure_backend(self, env, key_suffix="workloads")
        self.add_dependency(depends_on)
        cluster_name = env.resource_name("eks")
        AwsProvider(self, "aws", region=env.aws.region, allowed_account_ids=[env.aws.account_id])
        cluster = DataAwsEksCluster(self, "cluster", name=cluster_name)
        HelmProvider(
            self,
            "helm",
            kubernetes=HelmProviderKubernetes(
                host=cluster.endpoint,
                cluster_ca_certificate=f"${{base64decode({cluster.certificate_authority.get(0).data})}}",
                exec=HelmProviderKubernetesExec(
                    api_version="client.authentication.k8s.io/v1beta1",
                    command="aws",
                    args=["eks", "get-token", "--cluster-name", cluster_name, "--region", env.aws.region],
                ),
            ),
        )
        gpu_groups = env.aws.cluster.gpu_node_groups
        plugin_groups = [env.resource_name(f"ng-{g.name}") for g in gpu_groups if g.needs_device_plugin]
        if plugin_groups:
            tolerations = {(t.key, t.value, t.effect) for g in gpu_groups for t in g.taints}
            node_affinity = {"matchExpressions": [{"key": "eks.amazonaws.com/nodegroup", "operator": "In", "values": plugin_groups}]}
            self._release(
                NVIDIA_DEVICE_PLUGIN,
                {
                    "affinity": {
                        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [node_affinity]}}
                    },
                    "tolerations": [{"key": k, "value": v, "effect": e, "operator": "Equal"} for k, v, e in sorted(tolerations)],
                },
            )
        self._release(
            CLUSTER_AUTOSCALER,
            {
                "autoDiscovery": {"clusterName": cluster_name},
                "awsRegion": env.aws.region,
                # the autoscaler's minor version must match the cluster's
                "image": {"tag": f"v{env.aws.cluster.kubernetes_version}.0"},
                "rbac": {"serviceAccount": {"create": True, "name": SERVICE_ACCOUNT}},
                "extraArgs": {"balance-similar-node-groups": True, "skip-nodes-with-system-pods": False, "expander": "least-waste"},
            },
        )

    def _release(self, chart: Chart, values: dict[str, Any]) -> Release:
        """A pinned chart in kube-system; the construct id is the chart's name."""
        return Release(
            self,
            chart.name,
            name=chart.name,
            namespace=NAMESPACE,
            repository=chart.repository,
            chart=chart.name,
            version=chart.version,
            values=[json.dumps(values, sort_keys=True)],
        )
