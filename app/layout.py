"""The names the model server, the stacks and the tooling share, decided here once: where the
server runs in each cluster, and how a model registry lays out its versions.

Registry layout (``infra model`` writes it, the server reads it, the stacks grant on it)::

    models/<name>/<version>/<file>            the artifact files (model.joblib, metadata.json)
    models/<name>/<version>/manifest.json     written last: the version's files with their sha256
    models/<name>/aliases/<alias>.json        {"version": …}: latest, staging, production
"""

from __future__ import annotations

SERVING_NAMESPACE = "model-serving"  # the model server's namespace in every cluster
SERVING_SERVICE_ACCOUNT = "model-server"  # the Kubernetes service account it runs as (Pod/Workload Identity bind to it)
TRAINING_NAMESPACE = "ml-training"
# the node label a GPU node group's nodes carry (its name in the environment file), on the nodes and on
# the Cluster Autoscaler's node template, so a pod can select the group while it has zero nodes
GPU_GROUP_LABEL = "ml-platform/gpu-group"
TRAINING_SERVICE_ACCOUNT = "trainer"

MODELS_PREFIX = "models/"
MANIFEST = "manifest.json"
FILES = ("model.joblib", "metadata.json")


def model_prefix(name: str) -> str:
    """``models/<name>``: every object of one model."""
    return f"{MODELS_PREFIX}{name}"


def version_key(prefix: str, version: str, file: str) -> str:
    return f"{prefix}/{version}/{file}"


def alias_key(prefix: str, alias: str) -> str:
    return f"{prefix}/aliases/{alias}.json"


def registry_uri(scheme: str, bucket: str, name: str) -> str:
    """``s3://<bucket>/models/<name>`` or ``gs://…``: what the server's MODEL_REGISTRY_URI holds."""
    return f"{scheme}://{bucket}/{model_prefix(name)}"
