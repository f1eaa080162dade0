"""From an environment's ``serving`` section to the workload spec of one of its clusters.

Plain Python (no provider bindings): the workloads stack deploys what :func:`workload_spec`
describes, and the tests render and validate the same specs without synthesizing.
"""

from __future__ import annotations

from typing import Any

from app.k8s import GpuPlacement, Toleration, WorkloadSpec
from app.layout import GPU_GROUP_LABEL, SERVING_NAMESPACE, registry_uri
from environments.schema import Cloud, Environment, Taint

# the node label that names a GPU group/pool on its nodes AND on the autoscaler's node template (a
# group at zero nodes must still match): ours on EKS (the group writes it as a template tag), GKE's
# own on GKE (its autoscaler knows its pools' labels)
NODE_POOL_LABEL = {"aws": GPU_GROUP_LABEL, "gcp": "cloud.google.com/gke-nodepool"}


def _tolerations(taints: list[Taint]) -> tuple[Toleration, ...]:
    return tuple(Toleration(key=t.key, value=t.value, effect=t.effect) for t in taints)


def gpu_placement(env: Environment, cloud: Cloud, pool: str) -> GpuPlacement:
    if cloud == "aws":
        assert env.aws is not None and env.aws.cluster is not None
        taints = next(g for g in env.aws.cluster.gpu_node_groups if g.name == pool).taints
    else:
        assert env.gcp is not None and env.gcp.cluster is not None
        taints = next(p for p in env.gcp.cluster.gpu_node_pools if p.name == pool).taints
    value = pool if cloud == "aws" else env.gke_gpu_pool_name(pool)
    return GpuPlacement(node_selector={NODE_POOL_LABEL[cloud]: value}, tolerations=_tolerations(taints))


def workload_spec(env: Environment, cloud: Cloud) -> WorkloadSpec:
    serving = env.serving
    assert serving is not None
    version = serving.image_tag or (serving.image_digest or "").replace(":", "-")[:19]
    return WorkloadSpec(
        name=serving.registry,
        namespace=SERVING_NAMESPACE,
        image=env.image_repository(cloud, serving.registry) + serving.image_ref,
        version=version,
        min_replicas=serving.replicas.min,
        max_replicas=serving.replicas.max,
        cpu=serving.cpu,
        memory=serving.memory,
        target_cpu_utilization=serving.target_cpu_utilization,
        gpu=gpu_placement(env, cloud, serving.gpu_pool) if serving.gpu_pool else None,
        labels=env.all_tags,
        env={"ENVIRONMENT": env.name, "CLOUD": cloud, **(model_environment(env, cloud) if env.models else {})},
    )


def model_environment(env: Environment, cloud: Cloud) -> dict[str, str]:
    """Where the service finds its model at start: the registry URI of the environment's model on
    ``cloud`` and the alias it loads (app/registry.py reads them)."""
    assert env.models is not None
    scheme = "s3" if cloud == "aws" else "gs"
    return {
        "MODEL_REGISTRY_URI": registry_uri(scheme, env.model_bucket(cloud), env.models.name),
        "MODEL_ALIAS": env.models.alias,
    }


def release_reader(namespace: str, user: str) -> list[dict[str, Any]]:
    """A Role and RoleBinding that let ``user`` read the Helm release records of ``namespace``
    (Helm 3 keeps a release as Secrets of type ``helm.sh/release.v1``, listed by label: Helm docs,
    "Storage backends"), so the read-only plan identity can refresh the release. On GKE a Google
    service account's Kubernetes user name is its e-mail (GKE docs, "Role-based access control":
    subjects of kind User, name the account's e-mail)."""
    role: dict[str, Any] = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "helm-release-reader", "namespace": namespace},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}],
    }
    binding: dict[str, Any] = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "helm-release-reader-plan", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "helm-release-reader"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }
    return [role, binding]
