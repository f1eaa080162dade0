"""``infra cloudbuild submit ENV``: run ``cloudbuild.yaml`` on Cloud Build for an environment, the way
its trigger would, from the working tree.

The files git does not ignore (``git ls-files --cached --others``) are packed into a tar.gz and uploaded with google-cloud-storage
to the environment's Cloud Build source bucket (``gs://<project>_cloudbuild/source/``, gcloud's
convention); the build (steps, images, options of ``cloudbuild.yaml``, with the environment's
substitutions: ``_ENVIRONMENT``, ``_REGION``, ``_IMAGE_REPOSITORY``, ``_TAG``, ``_GIT_SHA``) is created
with the google-cloud-build client in the environment's region. ``CLOUDBUILD_API_ENDPOINT`` (or ``GOOGLE_API_ENDPOINT``) points
the client (REST transport, anonymous credentials) at a local server; ``STORAGE_EMULATOR_HOST`` does
the same for the upload.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from environments.schema import Environment
from infra.errors import InfraError
from infra.git import git

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "cloudbuild.yaml"
ENDPOINT_ENV = "CLOUDBUILD_API_ENDPOINT"


class BuildFailed(InfraError):
    """The build ran and did not succeed."""

    exit_code = 1


@dataclass
class Submitted:
    build_id: str
    log_url: str
    source: str
    substitutions: dict[str, str]
    images: list[str]


def _git(*args: str, repo: Path = ROOT) -> str:
    try:
        return git(repo, *args)
    except subprocess.CalledProcessError as exc:
        raise InfraError(f"git {' '.join(args)}: {exc.stderr.strip()}") from None


def source_archive(repo: Path = ROOT) -> bytes:
    """The working tree's files that git does not ignore, as a tar.gz (what a trigger's checkout
    would hold, plus files not yet added)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in sorted(_git("ls-files", "-z", "--cached", "--others", "--exclude-standard", repo=repo).split("\0")):
            path = repo / name
            if name and path.is_file():
                tar.add(path, arcname=name, recursive=False)
    return buffer.getvalue()


def build_request(env: Environment, registry: str, sha: str, config: Path = CONFIG) -> dict[str, Any]:
    """The Build (as the API's JSON) for ``env``: cloudbuild.yaml plus the environment's substitutions."""
    if env.gcp is None:
        raise InfraError(f"{env.name} has no gcp section: nothing to build on Cloud Build")
    registries = [r.name for r in env.gcp.registries]
    if registry not in registries:
        raise InfraError(f"{registry!r} is not an Artifact Registry repository of {env.name}; one of {registries or 'none'}")
    try:
        doc = yaml.safe_load(config.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InfraError(f"{config}: {exc}") from None
    if not isinstance(doc, dict) or not doc.get("steps"):
        raise InfraError(f"{config}: no steps")
    substitutions = {
        **{k: str(v) for k, v in (doc.get("substitutions") or {}).items()},
        "_ENVIRONMENT": env.name,
        "_REGION": env.gcp.region,
        "_IMAGE_REPOSITORY": env.artifact_registry_url(registry),
        "_IMAGE_NAME": registry,
        "_TAG": sha[:12],
        "_GIT_SHA": sha,
    }
    return {**doc, "substitutions": substitutions}


def _clients(project: str) -> tuple[Any, Any]:
    import google.cloud.storage as storage
    from google.cloud.devtools import cloudbuild_v1

    from infra.clouds.gcp import client

    return client(cloudbuild_v1.CloudBuildClient, endpoint_env=ENDPOINT_ENV), storage.Client(project=project)


def submit(env: Environment, registry: str, *, repo: Path = ROOT, wait: bool = False) -> Submitted:
    from google.cloud.devtools import cloudbuild_v1

    sha = _git("rev-parse", "HEAD", repo=repo).strip()
    request = build_request(env, registry, sha, repo / "cloudbuild.yaml")
    assert env.gcp is not None
    build_client, storage_client = _clients(env.gcp.project_id)
    bucket_name = f"{env.gcp.project_id}_cloudbuild"
    bucket = storage_client.bucket(bucket_name)
    if not bucket.exists():
        bucket = storage_client.create_bucket(bucket_name, location=env.gcp.region)
    obj = f"source/{int(time.time())}-{sha[:12]}.tgz"
    bucket.blob(obj).upload_from_string(source_archive(repo), content_type="application/gzip")
    request["source"] = {"storageSource": {"bucket": bucket_name, "object": obj}}
    build = cloudbuild_v1.Build.from_json(json.dumps(request), ignore_unknown_fields=False)
    operation = build_client.create_build(
        project_id=env.gcp.project_id, build=build, parent=f"projects/{env.gcp.project_id}/locations/{env.gcp.region}"
    )
    meta = operation.metadata.build
    if wait:
        result = operation.result(timeout=3600)
        if result.status != cloudbuild_v1.Build.Status.SUCCESS:
            raise BuildFailed(f"build {result.id} ended {result.status.name}: {result.log_url}")
    return Submitted(meta.id, meta.log_url, f"gs://{bucket_name}/{obj}", dict(request["substitutions"]), list(request.get("images", [])))
