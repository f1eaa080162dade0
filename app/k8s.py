"""The Kubernetes workload that runs the service: Deployment, Service, HorizontalPodAutoscaler and
PodDisruptionBudget, rendered from one :class:`WorkloadSpec`.

This is the only definition. The workloads stack (``stacks/workloads_stack.py``) builds a spec per
cluster from the environment file and deploys the rendered objects with Helm; the tests validate
the same objects against the Kubernetes OpenAPI schemas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.layout import SERVING_SERVICE_ACCOUNT

Manifest = dict[str, Any]

PORT = 8080
# the image's trained model (Dockerfile: COPY --from=train /model)
MODEL_DIR = "/srv/model"
MODEL_CACHE = "/tmp/models"
REGISTRY_ENV = "MODEL_REGISTRY_URI"
GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class Toleration:
    key: str
    value: str
    effect: str


@dataclass(frozen=True)
class GpuPlacement:
    """Run on one GPU pool: select its nodes, tolerate its taints, request ``count`` GPUs."""

    node_selector: dict[str, str]
    tolerations: tuple[Toleration, ...]
    count: int = 1


@dataclass(frozen=True)
class WorkloadSpec:
    name: str
    namespace: str
    image: str
    version: str
    min_replicas: int
    max_replicas: int
    cpu: str
    memory: str
    target_cpu_utilization: int = 70
    gpu: GpuPlacement | None = None
    labels: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise ValueError(f"replicas: need 1 <= min ({self.min_replicas}) <= max ({self.max_replicas})")


def _labels(spec: WorkloadSpec) -> tuple[dict[str, str], dict[str, str]]:
    selector = {"app.kubernetes.io/name": spec.name, "app.kubernetes.io/instance": spec.name}
    labels = {**spec.labels, **selector, "app.kubernetes.io/version": spec.version[:63], "app.kubernetes.io/component": "inference"}
    return selector, labels


def _object(spec: WorkloadSpec, api_version: str, kind: str, body: Manifest) -> Manifest:
    """An object of the workload: named after it, in its namespace, with its labels."""
    _, labels = _labels(spec)
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": labels},
        "spec": body,
    }


def _container(spec: WorkloadSpec) -> Manifest:
    requests: dict[str, Any] = {"cpu": spec.cpu, "memory": spec.memory}
    # memory limit = request (no overcommit, no surprise OOM kills under pressure); no CPU limit
    # (throttling hurts latency, the request already reserves the share)
    limits: dict[str, Any] = {"memory": spec.memory}
    if spec.gpu:
        requests[GPU_RESOURCE] = str(spec.gpu.count)
        limits[GPU_RESOURCE] = str(spec.gpu.count)
    env = {
        "MODEL_DIR": MODEL_DIR,
        "MODEL_CACHE": MODEL_CACHE,
        "HOST": "0.0.0.0",
        "PORT": str(PORT),
        "LOG_LEVEL": "INFO",
        **spec.env,
    }  # all interfaces: inside a pod
    http = {"port": "http"}
    return {
        "name": "server",
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
        "resources": {"requests": requests, "limits": limits},
        "startupProbe": {"httpGet": {**http, "path": "/healthz"}, "periodSeconds": 2, "failureThreshold": 30},
        "livenessProbe": {"httpGet": {**http, "path": "/healthz"}, "periodSeconds": 10, "timeoutSeconds": 2, "failureThreshold": 3},
        "readinessProbe": {"httpGet": {**http, "path": "/readyz"}, "periodSeconds": 5, "timeoutSeconds": 2, "failureThreshold": 2},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        # uvicorn stops taking new connections on SIGTERM; the sleep lets endpoints drop the pod first
        "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
        # the root file system is read-only: the version loaded from the registry goes to a scratch volume
        **({"volumeMounts": [{"name": "model-cache", "mountPath": MODEL_CACHE}]} if REGISTRY_ENV in spec.env else {}),
    }


def deployment(spec: WorkloadSpec) -> Manifest:
    selector, labels = _labels(spec)
    pod: Manifest = {
        "serviceAccountName": SERVING_SERVICE_ACCOUNT,
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": 30,
        "securityContext": {"runAsNonRoot": True, "fsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [_container(spec)],
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": key,
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": selector},
            }
            for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
        ],
    }
    if REGISTRY_ENV in spec.env:
        pod["volumes"] = [{"name": "model-cache", "emptyDir": {"sizeLimit": "1Gi"}}]
    if spec.gpu:
        pod["nodeSelector"] = dict(spec.gpu.node_selector)
        pod["tolerations"] = [
            {"key": t.key, "operator": "Equal", "value": t.value, "effect": t.effect}
            if t.value
            else {"key": t.key, "operator": "Exists", "effect": t.effect}
            for t in spec.gpu.tolerations
        ]
    return _object(
        spec,
        "apps/v1",
        "Deployment",
        {
            # the HPA owns the replica count; this is only the first rollout's
            "replicas": spec.min_replicas,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    )


def service(spec: WorkloadSpec) -> Manifest:
    selector, _ = _labels(spec)
    ports = [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    return _object(spec, "v1", "Service", {"type": "ClusterIP", "selector": selector, "ports": ports})


def autoscaler(spec: WorkloadSpec) -> Manifest:
    return _object(
        spec,
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.name},
            "minReplicas": spec.min_replicas,
            "maxReplicas": spec.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": spec.target_cpu_utilization}},
                }
            ],
            # scale up at once, scale down slowly (GPU nodes take minutes to come back)
            "behavior": {
                "scaleUp": {"stabilizationWindowSeconds": 0, "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}]},
                "scaleDown": {"stabilizationWindowSeconds": 300, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}]},
            },
        },
    )


def disruption_budget(spec: WorkloadSpec) -> Manifest:
    selector, _ = _labels(spec)
    # one pod at a time may be evicted: a drain never takes the service down when min >= 2, and
    # never blocks forever when min == 1
    body = {"maxUnavailable": 1, "selector": {"matchLabels": selector}, "unhealthyPodEvictionPolicy": "AlwaysAllow"}
    return _object(spec, "policy/v1", "PodDisruptionBudget", body)


def service_account(spec: WorkloadSpec) -> Manifest:
    """The identity the pods run as: EKS Pod Identity (an association) and GKE Workload Identity (a
    role granted to this account's principal) give it read access to the model registry. No token is
    mounted: both identity agents project their own."""
    _, labels = _labels(spec)
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": SERVING_SERVICE_ACCOUNT, "namespace": spec.namespace, "labels": labels},
        "automountServiceAccountToken": False,
    }


def render(spec: WorkloadSpec) -> list[Manifest]:
    """Every object of the workload, in apply order."""
    return [service_account(spec), service(spec), deployment(spec), autoscaler(spec), disruption_budget(spec)]
