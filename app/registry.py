"""The service's side of the model registry: at start, load the version its environment's alias
names (``MODEL_REGISTRY_URI`` = ``s3://bucket/models/<name>`` or ``gs://…``, ``MODEL_ALIAS``).

Layout (written by ``infra model``): ``<uri>/aliases/<alias>.json`` → ``{"version": …}``;
``<uri>/<version>/manifest.json`` lists the version's files with their sha256; the files are
downloaded into ``MODEL_CACHE/<version>/`` and checked before :meth:`Model.load` (which checks the
model file against ``metadata.json`` once more). S3 through boto3 (``AWS_ENDPOINT_URL`` honoured);
GCS through its JSON API with the metadata server's token (GKE Workload Identity), or anonymously
against ``STORAGE_EMULATOR_HOST``.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.layout import MANIFEST, alias_key, version_key
from app.model import Model, ModelLoadError
from app.settings import Settings

METADATA_TOKEN = "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token"


@dataclass(frozen=True)
class Loaded:
    model: Model
    uri: str | None
    alias: str | None


def _split(uri: str) -> tuple[str, str, str]:
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme not in ("s3", "gs") or not parsed.netloc:
        raise ModelLoadError(f"MODEL_REGISTRY_URI {uri!r}: expected s3://bucket/models/<name> or gs://bucket/models/<name>")
    return parsed.scheme, parsed.netloc, parsed.path.strip("/")


def _get(scheme: str, bucket: str, key: str) -> bytes:
    try:
        if scheme == "s3":
            import boto3

            return bytes(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
        return _gcs_get(bucket, key)
    except ModelLoadError:
        raise
    except Exception as exc:  # any client or network error: the service reports why it is not ready
        raise ModelLoadError(f"{scheme}://{bucket}/{key}: {exc}") from exc


def _gcs_get(bucket: str, key: str) -> bytes:
    host = os.environ.get("STORAGE_EMULATOR_HOST")
    base = host.rstrip("/") if host else "https://storage.googleapis.com"
    url = f"{base}/storage/v1/b/{bucket}/o/{urllib.parse.quote(key, safe='')}?alt=media"
    headers = {}
    if not host:
        token_req = urllib.request.Request(METADATA_TOKEN, headers={"Metadata-Flavor": "Google"})
        with urllib.request.urlopen(token_req, timeout=5) as resp:
            headers["Authorization"] = "Bearer " + json.loads(resp.read())["access_token"]
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as resp:
        return bytes(resp.read())


def fetch(uri: str, alias: str, cache: Path) -> tuple[Path, str]:
    """Download the version ``alias`` points at into ``cache/<version>``; return it and the version."""
    scheme, bucket, prefix = _split(uri)
    pointer = json.loads(_get(scheme, bucket, alias_key(prefix, alias)))
    version = str(pointer["version"])
    manifest: dict[str, Any] = json.loads(_get(scheme, bucket, version_key(prefix, version, MANIFEST)))
    target = cache / version
    target.mkdir(parents=True, exist_ok=True)
    for name, info in manifest["files"].items():
        blob = _get(scheme, bucket, version_key(prefix, version, name))
        if hashlib.sha256(blob).hexdigest() != info["sha256"]:
            raise ModelLoadError(f"{uri}/{version}/{name}: sha256 does not match its manifest")
        (target / name).write_bytes(blob)
    return target, version


def load(settings: Settings) -> Loaded:
    """The model to serve: from the registry when one is configured, else from ``MODEL_DIR``."""
    if settings.model_registry_uri:
        path, _ = fetch(settings.model_registry_uri, settings.model_alias, settings.model_cache)
        return Loaded(Model.load(path), settings.model_registry_uri, settings.model_alias)
    return Loaded(Model.load(settings.model_dir), None, None)
