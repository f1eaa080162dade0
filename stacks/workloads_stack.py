"""``<env>-workloads``: what runs inside an environment's Kubernetes clusters.

* the model server (``app/k8s.py``: Deployment, Service, HPA, PDB) on every cluster of an
  environment with a ``serving`` section, deployed through Helm from a local chart that installs
  the rendered objects;
* on EKS, the NVIDIA device plugin (Helm) on GPU node groups whose AMI lacks it (AL2023 NVIDIA AMIs ship
  the driver but not the plugin; Bottlerocket NVIDIA AMIs ship both), so pods can request
  ``nvidia.com/gpu``;
* the Cluster Autoscaler (Helm), which scales the GPU groups from zero using the node-template
  tags the environment stack writes, running as the Pod Identity role that stack creates.

It is a separate stack because the Helm provider needs the cluster's endpoint to be configured,
which Terraform cannot do in the same plan that creates the cluster. It finds the clusters by their
derived names and depends on the environment stack, so ``cdktf deploy <env> <env>-workloads``
applies them in order. GKE needs no plugin or autoscaler: GKE installs the driver and runs both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

from cdktf import AssetType, TerraformAsset, TerraformStack
from cdktf_cdktf_provider_aws.data_aws_eks_cluster import DataAwsEksCluster
from cdktf_cdktf_provider_aws.provider import AwsProvider
from cdktf_cdktf_provider_google.data_google_container_cluster import DataGoogleContainerCluster
from cdktf_cdktf_provider_google.provider import GoogleProvider
from cdktf_cdktf_provider_helm.provider import HelmProvider, HelmProviderKubernetes, HelmProviderKubernetesExec
from cdktf_cdktf_provider_helm.release import Release
from constructs import Construct

from app.k8s import render
from app.layout import GPU_GROUP_LABEL, SERVING_NAMESPACE
from environments import facts
from environments.schema import Cloud, Environment
from stacks.aws.autoscaler import NAMESPACE, SERVICE_ACCOUNT
from stacks.serving import release_reader, workload_spec
from stacks.state import configure_backend

# a chart directory, not Python: it lives at the top of the repository
MANIFESTS_CHART = Path(__file__).resolve().parent.parent / "charts" / "manifests"


# Chart pins live in environments/facts.yaml with their sources: the Cluster Autoscaler's chart and
# image per Kubernetes minor (its minor must match the cluster's), the NVIDIA device plugin's chart.
class Chart(NamedTuple):
    repository: str
    name: str
    version: str


def nvidia_device_plugin() -> Chart:
    return Chart("https://nvidia.github.io/k8s-device-plugin", "nvidia-device-plugin", facts.nvidia_device_plugin_chart())


def cluster_autoscaler(kubernetes_version: str) -> tuple[Chart, str]:
    """The chart and image tag of the Cluster Autoscaler for the cluster's Kubernetes minor."""
    found = facts.cluster_autoscaler(kubernetes_version)
    assert found is not None, f"facts.yaml has no Cluster Autoscaler for {kubernetes_version} (tested)"
    chart, image = found
    return Chart("https://kubernetes.github.io/autoscaler", "cluster-autoscaler", chart), image


def has_workloads(env: Environment) -> bool:
    """An EKS cluster (device plugin, autoscaler) or any cluster with a model server to run."""
    return env.has_workloads_stack


class WorkloadsStack(TerraformStack):
    def __init__(self, scope: Construct, env: Environment, *, depends_on: TerraformStack) -> None:
        super().__init__(scope, f"{env.name}-workloads")
        configure_backend(self, env, key_suffix="workloads")
        self.add_dependency(depends_on)
        helm: dict[Cloud, HelmProvider] = {}
        if env.aws is not None and env.aws.cluster is not None:
            helm["aws"] = self._eks(env)
        if env.gcp is not None and env.gcp.cluster is not None and env.serving is not None:
            helm["gcp"] = self._gke(env)  # GKE needs Helm only for the model server
        if env.serving is not None:
            chart = TerraformAsset(self, "manifests-chart", path=str(MANIFESTS_CHART), type=AssetType.DIRECTORY)
            for cloud, provider in helm.items():
                spec = workload_spec(env, cloud)
                manifests = render(spec)
                plan_sa = env.gcp_service_account("plan") if cloud == "gcp" else None
                if plan_sa:  # EKS: the plan role's access entry reads Secrets (AmazonEKSAdminViewPolicy)
                    manifests += release_reader(SERVING_NAMESPACE, plan_sa)
                Release(
                    self,
                    f"{spec.name}-{'eks' if cloud == 'aws' else 'gke'}",
                    provider=provider,
                    name=spec.name,
                    namespace=SERVING_NAMESPACE,
                    create_namespace=True,
                    chart=chart.path,
                    values=[json.dumps({"manifests": manifests}, sort_keys=True)],
                    # wait for the rollout; roll back by itself when it does not become ready
                    atomic=True,
                    timeout=600,
                )

    def _eks(self, env: Environment) -> HelmProvider:
        """Helm on the EKS cluster, with the device plugin and the Cluster Autoscaler installed."""
        assert env.aws is not None and env.aws.cluster is not None
        cluster_name = env.resource_name("eks")
        AwsProvider(self, "aws", region=env.aws.region, allowed_account_ids=[env.aws.account_id])
        cluster = DataAwsEksCluster(self, "cluster", name=cluster_name)
        provider = HelmProvider(
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
        plugin_groups = [g.name for g in gpu_groups if g.needs_device_plugin]
        if plugin_groups:
            tolerations = {(t.key, t.value, t.effect) for g in gpu_groups for t in g.taints}
            node_affinity = {"matchExpressions": [{"key": GPU_GROUP_LABEL, "operator": "In", "values": plugin_groups}]}
            self._release(
                nvidia_device_plugin(),
                {
                    "affinity": {
                        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [node_affinity]}}
                    },
                    "tolerations": [{"key": k, "value": v, "effect": e, "operator": "Equal"} for k, v, e in sorted(tolerations)],
                },
            )
        autoscaler, image = cluster_autoscaler(env.aws.cluster.kubernetes_version)
        self._release(
            autoscaler,
            {
                "autoDiscovery": {"clusterName": cluster_name},
                "awsRegion": env.aws.region,
                # the autoscaler's minor version must match the cluster's (facts.yaml)
                "image": {"tag": image},
                "rbac": {"serviceAccount": {"create": True, "name": SERVICE_ACCOUNT}},
                "extraArgs": {"balance-similar-node-groups": True, "skip-nodes-with-system-pods": False, "expander": "least-waste"},
            },
        )
        return provider

    def _gke(self, env: Environment) -> HelmProvider:
        """Helm on the GKE cluster through its DNS-based endpoint, authenticated by the
        gke-gcloud-auth-plugin exec credential with the job's Google credentials: no token is read into
        the plan or the state (``data.google_client_config.access_token`` is stored in both: the
        provider's own doc warns "persists a sensitive credential in the remote state"). The DNS
        endpoint serves a publicly trusted certificate, so no cluster CA is pinned (GKE docs, DNS-based
        endpoint; terraform-provider-kubernetes#2637)."""
        assert env.gcp is not None and env.gcp.cluster is not None
        GoogleProvider(self, "google", project=env.gcp.project_id, region=env.gcp.region)
        cluster = DataGoogleContainerCluster(self, "gke-cluster", name=env.resource_name("gke"), location=env.gcp.region)
        endpoint = cluster.control_plane_endpoints_config.get(0).dns_endpoint_config.get(0).endpoint
        return HelmProvider(
            self,
            "helm-gke",
            alias="gke",
            kubernetes=HelmProviderKubernetes(
                host=f"https://{endpoint}",
                exec=HelmProviderKubernetesExec(api_version="client.authentication.k8s.io/v1beta1", command="gke-gcloud-auth-plugin"),
            ),
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
