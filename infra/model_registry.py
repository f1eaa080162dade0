"""``infra model register|list|show|promote|drift``: the model registry of each environment.

Layout in the environment's registry bucket (``models:`` in its file; S3 on AWS, else GCS):

    models/<name>/<version>/model.joblib, metadata.json   the files registered together
    models/<name>/<version>/manifest.json                 version, metrics, fingerprints, git sha,
                                                          created/registered at, files + sha256
    models/<name>/aliases/<alias>.json                    {"version": …}: latest, staging, production

A version is immutable: registering one that exists is refused (the manifest is written last, with
a conditional write, so a version counts only once all its files are there). A version whose
held-out accuracy is below the environment's ``models.min_accuracy`` is refused. Promotion copies a
version from the source environment's bucket into the target's, byte for byte (sha256 checked),
and moves the target's alias; it never retrains. The service loads its alias at start
(app/registry.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from app.layout import FILES, MANIFEST, alias_key, model_prefix, version_key
from environments.loader import Environments
from environments.schema import Cloud, Environment
from infra.clouds import aws
from infra.errors import InfraError


class RegistryRefused(InfraError):
    """The registry refuses the operation (it exists, it is below the floor); nothing was written."""

    exit_code = 1


class Store(Protocol):
    def get(self, key: str) -> bytes | None: ...
    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> bool: ...
    def keys(self, prefix: str) -> list[str]: ...


class S3Store:
    def __init__(self, bucket: str, region: str | None) -> None:
        self.bucket = bucket
        self.s3 = aws.client("s3", region)

    def get(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except ClientError as exc:
            if aws.error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> bool:
        from botocore.exceptions import ClientError

        extra = {"IfNoneMatch": "*"} if if_absent else {}
        try:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, **extra)
        except ClientError as exc:
            if if_absent and aws.error_code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                return False
            raise
        return True

    def keys(self, prefix: str) -> list[str]:
        out: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            out += [o["Key"] for o in page.get("Contents", [])]
        return out


class GcsStore:
    def __init__(self, bucket: str, project: str) -> None:
        import google.cloud.storage as storage

        self.bucket = storage.Client(project=project).bucket(bucket)

    def get(self, key: str) -> bytes | None:
        from google.api_core import exceptions

        try:
            return bytes(self.bucket.blob(key).download_as_bytes())
        except exceptions.NotFound:
            return None

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> bool:
        from google.api_core import exceptions

        try:
            self.bucket.blob(key).upload_from_string(data, if_generation_match=0 if if_absent else None)
        except exceptions.PreconditionFailed:
            return False
        return True

    def keys(self, prefix: str) -> list[str]:
        return [b.name for b in self.bucket.client.list_blobs(self.bucket, prefix=prefix)]


def store(env: Environment, cloud: Cloud | None = None) -> tuple[Store, str]:
    """The registry of ``env`` on ``cloud`` (default: AWS when the environment has it) and its URI."""
    if env.models is None:
        raise InfraError(f"{env.name} declares no model registry (a `models:` section)")
    cloud = cloud or ("aws" if env.aws else "gcp")
    if cloud == "aws":
        if env.aws is None:
            raise InfraError(f"{env.name} has no aws section")
        bucket = env.model_bucket("aws")
        return S3Store(bucket, env.aws.region), f"s3://{bucket}"
    if env.gcp is None:
        raise InfraError(f"{env.name} has no gcp section")
    bucket = env.model_bucket("gcp")
    return GcsStore(bucket, env.gcp.project_id), f"gs://{bucket}"


def content_digest(manifest: dict[str, Any]) -> str:
    """``sha256:…`` of a version's canonical content (name, version, files with their sha256 and
    size): what ``models.digest`` pins. A promoted copy's manifest gains fields (promoted_from, …),
    its content digest does not change."""
    content = {"name": manifest.get("name"), "version": manifest.get("version"), "files": manifest.get("files")}
    return "sha256:" + hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass
class Registry:
    env: Environment
    store: Store
    uri: str

    @property
    def name(self) -> str:
        assert self.env.models is not None
        return self.env.models.name

    @property
    def prefix(self) -> str:
        return model_prefix(self.name)

    def manifest(self, version: str) -> dict[str, Any] | None:
        data = self.store.get(version_key(self.prefix, version, MANIFEST))
        return json.loads(data) if data else None

    def alias(self, alias: str) -> str | None:
        data = self.store.get(alias_key(self.prefix, alias))
        return str(json.loads(data)["version"]) if data else None

    def set_alias(self, alias: str, version: str, by: str) -> None:
        body = {"version": version, "set_at": datetime.now(UTC).isoformat(timespec="seconds"), "by": by}
        self.store.put(alias_key(self.prefix, alias), json.dumps(body).encode())

    def versions(self) -> list[dict[str, Any]]:
        names = sorted({k.split("/")[2] for k in self.store.keys(self.prefix + "/") if k.endswith("/" + MANIFEST)})
        aliases = {a: self.alias(a) for a in ("latest", "staging", "production")}
        out = []
        for v in names:
            m = self.manifest(v) or {}
            out.append({**m, "aliases": sorted(a for a, target in aliases.items() if target == v)})
        return sorted(out, key=lambda m: str(m.get("registered_at", "")))

    def floor(self, metrics: dict[str, Any], version: str) -> None:
        assert self.env.models is not None
        accuracy = metrics.get("accuracy")
        if not isinstance(accuracy, int | float) or accuracy < self.env.models.min_accuracy:
            raise RegistryRefused(
                f"{version}: held-out accuracy {accuracy} is below {self.env.name}'s floor models.min_accuracy = "
                f"{self.env.models.min_accuracy:g}; not registered"
            )

    def write(self, version: str, files: dict[str, bytes], manifest: dict[str, Any]) -> None:
        """Upload the files, then the manifest, each only if absent (the buckets refuse any other
        write of a version: stacks/aws/model_registry.py, stacks/gcp/model_registry.py). A file left
        by an interrupted register counts when its bytes are the same."""
        for name, data in files.items():
            key = version_key(self.prefix, version, name)
            if not self.store.put(key, data, if_absent=True):
                there = self.store.get(key)
                if there is None or hashlib.sha256(there).digest() != hashlib.sha256(data).digest():
                    raise RegistryRefused(f"{self.uri}/{version}/{name} exists with other bytes; versions are immutable")
        if not self.store.put(
            version_key(self.prefix, version, MANIFEST), json.dumps(manifest, indent=2, sort_keys=True).encode(), if_absent=True
        ):
            raise RegistryRefused(f"{version} was registered in {self.uri} meanwhile; versions are immutable")


def registry_clouds(env: Environment, cloud: Cloud | None = None) -> list[Cloud]:
    """The clouds whose registry a write goes to: ``cloud`` when given, else every cloud the
    environment has (each has its bucket: stacks/aws/model_registry.py, stacks/gcp/model_registry.py),
    so that the serving on each cloud finds the version its alias names."""
    if cloud is not None:
        return [cloud]
    clouds: tuple[Cloud, ...] = ("aws", "gcp")
    return [c for c in clouds if getattr(env, c) is not None]


def registry(env: Environment, cloud: Cloud | None = None) -> Registry:
    s, uri = store(env, cloud)
    return Registry(env, s, f"{uri}/{model_prefix(env.models.name if env.models else '')}")


def _artifact(path: Path) -> Path:
    """A version directory, or a directory of versions whose LATEST names one (as `make train` writes)."""
    if (path / "metadata.json").is_file():
        return path
    latest = path / "LATEST"
    if latest.is_file():
        return path / latest.read_text().strip()
    raise InfraError(f"{path}: no metadata.json and no LATEST file; run `make train` first")


def register(env: Environment, artifact: Path, *, cloud: Cloud | None = None, existing_ok: bool = False) -> dict[str, Any]:
    reg = registry(env, cloud)
    directory = _artifact(artifact)
    files = {name: (directory / name).read_bytes() for name in FILES if (directory / name).is_file()}
    if set(files) != set(FILES):
        raise InfraError(f"{directory}: expected {', '.join(FILES)}")
    metadata = json.loads(files["metadata.json"])
    version = str(metadata["version"])
    if metadata.get("name") != reg.name:
        raise RegistryRefused(f"{directory}: model {metadata.get('name')!r}, but {env.name}'s registry holds {reg.name!r} (models.name)")
    existing = reg.manifest(version)
    if existing is not None:
        same = existing.get("files") == {n: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for n, d in files.items()}
        if existing_ok and same:
            return existing
        raise RegistryRefused(f"{version} is already registered in {reg.uri}; versions are immutable (retrain to get a new one)")
    reg.floor(metadata.get("metrics", {}), version)
    manifest = {
        "name": reg.name,
        "version": version,
        "metrics": {
            k: metadata["metrics"][k] for k in ("accuracy", "f1_macro", "log_loss", "baseline_accuracy") if k in metadata["metrics"]
        },
        "data_fingerprint": metadata.get("data", {}).get("fingerprint"),
        "code_fingerprint": metadata.get("code", {}).get("fingerprint"),
        "git_sha": metadata.get("git_sha"),
        "created_at": metadata.get("created_at"),
        "registered_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": env.name,
        "files": {name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)} for name, data in files.items()},
    }
    reg.write(version, files, manifest)
    reg.set_alias("latest", version, by=f"register ({env.name})")
    return manifest


def promote(envs: Environments, source_name: str, target_name: str, version: str | None, *, cloud: Cloud | None = None) -> dict[str, Any]:
    """Copy ``version`` (default: the source's own alias) into ``target`` and move the target's alias."""
    source, target = envs.check_promotion(source_name, target_name)
    assert target.models is not None
    src, dst = registry(source, cloud), registry(target, cloud)
    version = version or src.alias(source.models.alias if source.models else "latest")
    if version is None:
        raise RegistryRefused(f"{source.name}'s registry has no version under its alias; register one first")
    manifest = src.manifest(version)
    if manifest is None:
        raise RegistryRefused(f"{version} is not registered in {src.uri}")
    pinned = target.models.digest if target.models.version == version else None
    if pinned is not None and content_digest(manifest) != pinned:
        raise RegistryRefused(
            f"{version} in {src.uri} has content {content_digest(manifest)[:19]}…, but {target.name} pins "
            f"models.digest {pinned[:19]}…: not the version that was reviewed; not promoted"
        )
    dst.floor(manifest.get("metrics", {}), version)
    existing = dst.manifest(version)
    if existing is None:
        files = {}
        for name, info in manifest["files"].items():
            data = src.store.get(f"{src.prefix}/{version}/{name}")
            if data is None or hashlib.sha256(data).hexdigest() != info["sha256"]:
                raise RegistryRefused(f"{src.uri}/{version}/{name}: missing or not matching its manifest; not promoted")
            files[name] = data
        copied = {**manifest, "promoted_from": source.name, "promoted_at": datetime.now(UTC).isoformat(timespec="seconds")}
        dst.write(version, files, copied)
    elif existing.get("files") != manifest.get("files"):
        raise RegistryRefused(f"{version} exists in {dst.uri} with other files; versions are immutable")
    previous = dst.alias(target.models.alias)
    dst.set_alias(target.models.alias, version, by=f"promote {source.name} → {target.name}")
    return {
        "version": version,
        "from": src.uri,
        "to": dst.uri,
        "alias": target.models.alias,
        "previous": previous,
        "copied": existing is None,
    }


def readiness(envs: Environments, name: str, *, cloud: Cloud | None = None) -> list[tuple[str, bool, str]]:
    """Per registry of ``name``: whether the alias its services load names a registered version
    (the model server is not ready without one, and the workloads stack's Helm release, atomic,
    rolls back after its timeout), and what to do when it does not."""
    env = envs.named(name)
    if env.models is None:
        return []
    source = envs.source_of(name)
    out = []
    for c in registry_clouds(env, cloud):
        reg = registry(env, c)
        version = reg.alias(env.models.alias)
        if version is not None and reg.manifest(version) is not None:
            out.append((reg.uri, True, f"{env.models.alias} → {version}"))
        elif source is None:
            out.append(
                (
                    reg.uri,
                    False,
                    f"{env.models.alias} names no version: register a first one (gh workflow run train.yml), then re-run this job",
                )
            )
        elif env.models.version:
            out.append(
                (
                    reg.uri,
                    False,
                    f"models.version {env.models.version} was not promoted: run infra model promote --from {source.name} --to {name}",
                )
            )
        else:
            out.append(
                (
                    reg.uri,
                    False,
                    f"{env.models.alias} names no version and {name} pins none: pin one in a pull request "
                    f"(infra model candidate --from {source.name} --to {name}; infra model pin {name} VERSION --digest DIGEST)",
                )
            )
    return out


def drift_from_log(log: Path, reference: dict[str, Any], *, window: int | None = None) -> tuple[dict[str, float], int]:
    """PSI per feature of the rows logged by the service (``event: prediction`` lines) against the
    model's training distribution; the last ``window`` rows when given."""
    from app.monitoring import drift

    rows: list[dict[str, float]] = []
    try:
        lines = log.read_text().splitlines()
    except OSError as exc:
        raise InfraError(f"{log}: {exc}") from None
    for n, line in enumerate(lines, 1):
        if '"prediction"' not in line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise InfraError(f"{log}:{n}: not a JSON log line") from None
        if record.get("event") == "prediction":
            rows += record.get("rows", [])
    if window:
        rows = rows[-window:]
    if not rows:
        raise InfraError(f'{log}: no logged predictions (lines with event "prediction")')
    missing = sorted(set(reference) - set(rows[0]))
    if missing:
        raise InfraError(f"{log}: logged rows lack features {missing}")
    return drift(reference, rows), len(rows)


@dataclass
class DriftResult:
    model_version: str
    rows: int
    psi: dict[str, float]
    verdict: dict[str, str]  # stable | moderate | significant

    @property
    def significant(self) -> bool:
        return any(v == "significant" for v in self.verdict.values())

    def to_dict(self) -> dict[str, Any]:
        return {"model_version": self.model_version, "rows": self.rows, "psi": self.psi, "verdict": self.verdict}


def drift(
    log: Path, *, model_dir: Path | None = None, env: Environment | None = None, window: int | None = None, cloud: Cloud | None = None
) -> DriftResult:
    """``infra model drift``: PSI per feature of logged requests against the training distribution of
    the served model: a version's directory, or the version ``env``'s alias names in its registry."""
    from app.monitoring import MODERATE, SIGNIFICANT

    if (model_dir is None) == (env is None):
        raise InfraError("give exactly one of --model DIR or --env ENV")
    if model_dir is not None:
        try:
            metadata = json.loads((model_dir / "metadata.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InfraError(f"{model_dir}: not a trained version ({exc})") from None
    else:
        assert env is not None
        reg = registry(env, cloud)
        served = reg.alias(env.models.alias if env.models else "latest")
        raw = reg.store.get(f"{reg.prefix}/{served}/metadata.json") if served else None
        if raw is None:
            raise InfraError(f"{env.name}: its alias names no registered version")
        metadata = json.loads(raw)
    if not metadata.get("reference"):
        raise InfraError(f"model {metadata.get('version')} carries no training distribution (trained before drift monitoring); retrain")
    values, n = drift_from_log(log, metadata["reference"], window=window)
    verdict = {k: ("significant" if v > SIGNIFICANT else "moderate" if v > MODERATE else "stable") for k, v in values.items()}
    return DriftResult(str(metadata.get("version")), n, values, verdict)


def candidate(source: Environment, target: Environment, *, cloud: Cloud | None = None) -> dict[str, Any]:
    """Does the source's newest version (its ``latest``) beat what the target pins? Both manifests are
    read from the source's registry: the target's version was registered there before it moved on."""
    reg = registry(source, cloud)
    newest = reg.alias("latest")
    if newest is None:
        raise RegistryRefused(f"{source.name}'s registry has no version yet")
    new = reg.manifest(newest) or {}
    current = target.models.version if target.models else None
    if current == newest:
        return {
            "candidate": newest,
            "digest": content_digest(new),
            "current": current,
            "beats": False,
            "reason": f"{target.name} already pins it",
        }
    old = reg.manifest(current) if current else None
    new_acc = float(new.get("metrics", {}).get("accuracy", 0))
    if old is None:
        reason = f"{target.name} pins {'nothing' if current is None else current + ' (not in ' + source.name + ')'}"
        return {
            "candidate": newest,
            "digest": content_digest(new),
            "current": current,
            "beats": True,
            "reason": reason,
            "accuracy": new_acc,
        }
    old_acc = float(old.get("metrics", {}).get("accuracy", 0))
    beats = new_acc > old_acc or (
        new_acc == old_acc and float(new["metrics"].get("log_loss", 9)) < float(old["metrics"].get("log_loss", 9))
    )
    return {
        "candidate": newest,
        "digest": content_digest(new),
        "current": current,
        "beats": beats,
        "reason": f"accuracy {new_acc:.4f} vs {old_acc:.4f}" + ("" if new_acc != old_acc else " (tie: log loss decides)"),
        "accuracy": new_acc,
    }


def pin(version: str, env_file: Path, digest: str | None = None) -> bool:
    """Write ``models.version: <version>`` (and ``models.digest``, its content) into an environment
    file (comments and order kept, next to ``alias``); re-validated; False when it already pins it."""
    from environments.editor import edit_env_file

    def change(doc: Any) -> bool:
        models = doc.get("models")
        if models is None:
            raise InfraError(f"{env_file}: no models section to pin a version in")
        if models.get("version") == version and models.get("digest") == digest:
            return False
        for key, value, after in (("version", version, "alias"), ("digest", digest, "version")):
            if value is None:
                models.pop(key, None)
            elif key in models:
                models[key] = value
            else:
                models.insert(list(models.keys()).index(after) + 1 if after in models else len(models), key, value)
        return True

    return edit_env_file(env_file, change)
