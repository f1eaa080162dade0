"""The model registry: register → list → promote → the service in the target environment loads the
promoted version (a moto server on 127.0.0.1 and the service through its TestClient); refusals;
the drift statistic on a hand-checkable sample; /metrics parsed by the Prometheus client's parser."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.monitoring import drift, psi, shares
from app.pipeline import TrainConfig, run
from app.service import create_app
from app.settings import Settings
from environments.loader import load_environments
from environments.schema import Cloud, Environment
from infra.cli.app import main
from infra.model_registry import RegistryRefused, promote, register, registry
from stacks.serving import model_environment
from tests.conftest import read_env, write_env


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models")
    run(TrainConfig(out_dir=out))
    return out


@pytest.fixture
def buckets(aws: str, environments: dict[str, Environment]) -> dict[str, Environment]:
    s3 = boto3.client("s3", region_name="us-east-1")
    for env in environments.values():
        s3.create_bucket(Bucket=env.model_bucket("aws"))
    return environments


def _as_deployed(env: Environment, cloud: Cloud, tmp_path: Path) -> Settings:
    """The service's settings as the stack sets them on ``cloud`` (no local model to fall back on)."""
    variables = model_environment(env, cloud)
    return Settings(
        model_dir=tmp_path / "nothing-here",
        model_registry_uri=variables["MODEL_REGISTRY_URI"],
        model_alias=variables["MODEL_ALIAS"],
        model_cache=tmp_path / "cache",
    )


def test_register_list_promote_and_the_target_service_loads_it(
    buckets: dict[str, Environment], trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev, staging = buckets["dev"], buckets["staging"]
    manifest = register(dev, trained)
    version = manifest["version"]
    assert manifest["metrics"]["accuracy"] >= dev.models.min_accuracy  # type: ignore[union-attr]
    assert manifest["data_fingerprint"].startswith("sha256:") and manifest["git_sha"]
    assert set(manifest["files"]) == {"model.joblib", "metadata.json"}
    listed = registry(dev).versions()
    assert [(m["version"], m["aliases"]) for m in listed] == [(version, ["latest"])]
    assert registry(staging).versions() == []

    result = promote(buckets, "dev", "staging", None)
    assert (result["version"], result["alias"], result["previous"], result["copied"]) == (version, "staging", None, True)
    # byte for byte: the same files under the same version in staging's bucket
    s3 = boto3.client("s3", region_name="us-east-1")
    key = f"models/wine-cultivar/{version}/model.joblib"
    assert (
        s3.get_object(Bucket=dev.model_bucket("aws"), Key=key)["Body"].read()
        == s3.get_object(Bucket=staging.model_bucket("aws"), Key=key)["Body"].read()
    )
    assert registry(staging).manifest(version)["promoted_from"] == "dev"  # type: ignore[index]
    assert promote(buckets, "dev", "staging", version)["copied"] is False  # again: nothing copied, alias unchanged

    # the staging service, configured as the stack configures it, loads the promoted version at start
    settings = _as_deployed(staging, "aws", tmp_path)
    with TestClient(create_app(settings)) as client:
        meta = client.get("/metadata").json()
        assert (meta["model_version"], meta["registry_alias"]) == (version, "staging")
        assert meta["registry_uri"] == settings.model_registry_uri
        row = {f: 1.0 for f in meta["features"]}
        assert client.post("/predict", json={"instances": [row]}).status_code == 200


def test_duplicate_and_below_floor_are_refused_with_nothing_written(buckets: dict[str, Environment], trained: Path, env_dir: Path) -> None:
    dev = buckets["dev"]
    register(dev, trained)
    with pytest.raises(RegistryRefused, match=r"already registered.*immutable"):
        register(dev, trained)
    data = read_env(env_dir, "dev")
    data["models"]["min_accuracy"] = 0.999
    write_env(env_dir, "dev", data)
    strict = load_environments(env_dir)["dev"]
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.delete_object(Bucket=dev.model_bucket("aws"), Key=f"models/wine-cultivar/{registry(dev).alias('latest')}/manifest.json")
    before = s3.list_objects_v2(Bucket=dev.model_bucket("aws")).get("KeyCount")
    with pytest.raises(RegistryRefused, match=r"below dev's floor models\.min_accuracy = 0\.999"):
        register(strict, trained)
    assert s3.list_objects_v2(Bucket=dev.model_bucket("aws")).get("KeyCount") == before


def test_promotion_follows_the_path_and_the_target_floor(buckets: dict[str, Environment], trained: Path, env_dir: Path) -> None:
    register(buckets["dev"], trained)
    with pytest.raises(Exception, match="does not promote to production"):
        promote(buckets, "dev", "production", None)
    data = read_env(env_dir, "staging")
    data["models"]["min_accuracy"] = 0.999
    write_env(env_dir, "staging", data)
    with pytest.raises(RegistryRefused, match="below staging's floor"):
        promote(load_environments(env_dir), "dev", "staging", None)


def test_model_cli(buckets: dict[str, Environment], trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "register", "dev", str(trained), "--cloud", "aws"]) == 0
    version = json.loads(capsys.readouterr().out)["version"]
    assert main(["model", "register", "dev", str(trained), "--cloud", "aws"]) == 1
    assert main(["model", "list", "dev", "--format", "json"]) == 0
    assert [m["version"] for m in json.loads(capsys.readouterr().out)] == [version]
    assert main(["model", "promote", "--from", "dev", "--to", "staging", "--cloud", "aws"]) == 0
    capsys.readouterr()
    assert main(["model", "show", "staging", "staging"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == version


# --- drift ------------------------------------------------------------------------------------


def test_psi_on_a_hand_checkable_sample() -> None:
    # two bins, training 50/50, served 60/40: 0.1·ln(1.2) + (−0.1)·ln(0.8)
    assert psi([0.5, 0.5], [0.6, 0.4]) == pytest.approx(0.1 * math.log(1.2) - 0.1 * math.log(0.8))
    assert psi([0.5, 0.5], [0.6, 0.4]) == pytest.approx(0.040546, abs=1e-6)
    assert psi([0.25] * 4, [0.25] * 4) == 0
    # an empty bin counts as 1e-4, so the statistic stays finite
    assert psi([0.5, 0.5], [1.0, 0.0]) == pytest.approx(0.5 * math.log(2) + (1e-4 - 0.5) * math.log(1e-4 / 0.5))
    assert shares([1, 2, 3, 10], [2.5]) == [0.5, 0.5]
    assert drift({"x": {"edges": [2.5], "proportions": [0.5, 0.5]}}, [{"x": 1}, {"x": 1}, {"x": 1}, {"x": 5}, {"x": 9}]) == pytest.approx(
        {"x": psi([0.5, 0.5], [0.6, 0.4])}
    )


@pytest.fixture
def client(trained: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(model_dir=trained))) as c:
        yield c


def test_metrics_parse_and_count_predictions_and_drift(client: TestClient, trained: Path) -> None:
    meta = client.get("/metadata").json()
    reference = json.loads((trained / meta["model_version"] / "metadata.json").read_text())["reference"]
    # rows at each feature's training median: every row falls in one bin → a large shift
    row = {f: reference[f]["edges"][len(reference[f]["edges"]) // 2] for f in meta["features"]}
    for _ in range(5):
        assert client.post("/predict", json={"instances": [row, row]}).status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    predicted = sum(s.value for s in families["model_predictions"].samples if s.name == "model_predictions_total")
    assert predicted == 10
    latency = [s for s in families["model_predict_latency_seconds"].samples if s.name.endswith("_count")]
    assert latency[0].value == 5 and latency[0].labels["model_version"] == meta["model_version"]
    psis = {s.labels["feature"]: s.value for s in families["model_feature_psi"].samples}
    assert set(psis) == set(meta["features"]) and min(psis.values()) > 0.25
    assert families["model_drift_window_rows"].samples[0].value == 10


def test_drift_from_logged_requests(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    version_dir = trained / (trained / "LATEST").read_text().strip()
    reference = json.loads((version_dir / "metadata.json").read_text())["reference"]
    # a log of rows drawn bin by bin in the training proportions: no drift
    rows = []
    for i in range(200):
        row = {}
        for f, ref in reference.items():
            edges = ref["edges"]
            b = i % (len(edges) + 1)
            row[f] = (edges[0] - 1) if b == 0 else (edges[-1] + 1 if b == len(edges) else (edges[b - 1] + edges[b]) / 2)
        rows.append(row)
    log = tmp_path / "service.log"
    log.write_text(
        "\n".join(json.dumps({"msg": "prediction", "event": "prediction", "rows": rows[i : i + 4]}) for i in range(0, 200, 4)) + "\n"
    )
    assert main(["model", "drift", "--log", str(log), "--model", str(version_dir), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"] == 200 and max(report["psi"].values()) < 0.1
    shifted = tmp_path / "shifted.log"
    shifted.write_text(json.dumps({"event": "prediction", "rows": [{f: r["edges"][-1] + 100 for f, r in reference.items()}] * 50}) + "\n")
    assert main(["model", "drift", "--log", str(shifted), "--model", str(version_dir)]) == 1
    assert main(["model", "drift", "--log", str(shifted)]) == 2  # neither --model nor --env


def test_candidate_beats_what_staging_pins_and_pin_writes_the_file(
    buckets: dict[str, Environment], trained: Path, env_dir: Path, tmp_path: Path
) -> None:
    from infra.model_registry import candidate, pin

    dev = buckets["dev"]
    manifest = register(dev, trained)
    result = candidate(dev, buckets["staging"])
    assert (result["candidate"], result["current"], result["beats"]) == (manifest["version"], None, True)
    path = env_dir / "staging.yaml"
    before = path.read_text()
    assert pin(manifest["version"], path) is True
    after = path.read_text()
    assert f"  version: {manifest['version']}" in after and after.replace(f"  version: {manifest['version']}\n", "") == before
    staging = load_environments(env_dir)["staging"]
    assert staging.models.version == manifest["version"]  # type: ignore[union-attr]
    assert candidate(dev, staging)["beats"] is False  # it pins the newest already
    assert pin(manifest["version"], path) is False
    # a weaker newer version does not beat the pinned one
    weaker = tmp_path / "weaker"
    shutil.copytree(trained / manifest["version"], weaker / "wine-cultivar-000000000001")
    meta = json.loads((weaker / "wine-cultivar-000000000001" / "metadata.json").read_text())
    meta["version"], meta["metrics"]["accuracy"] = "wine-cultivar-000000000001", dev.models.min_accuracy  # type: ignore[union-attr]
    (weaker / "wine-cultivar-000000000001" / "metadata.json").write_text(json.dumps(meta))
    register(dev, weaker / "wine-cultivar-000000000001")
    result = candidate(dev, staging)
    assert (result["candidate"], result["beats"]) == ("wine-cultivar-000000000001", False)


@pytest.fixture(scope="module")
def gcs_host() -> Iterator[str]:
    from tests.servers import gcs_emulator

    with gcs_emulator() as url:
        yield url


def test_gcs_registry_and_the_service_loading_from_it(
    gcs_host: str, environments: dict[str, Environment], trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The GCS half, against the GCS emulator: register, refuse a duplicate, promote, serve."""
    import google.cloud.storage as storage

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_host)
    dev, staging = environments["dev"], environments["staging"]
    for env in (dev, staging):
        storage.Client(project=env.gcp.project_id).create_bucket(env.model_bucket("gcp"))  # type: ignore[union-attr]
    manifest = register(dev, trained, cloud="gcp")
    with pytest.raises(RegistryRefused, match="already registered"):
        register(dev, trained, cloud="gcp")
    assert promote(environments, "dev", "staging", None, cloud="gcp")["version"] == manifest["version"]
    settings = _as_deployed(staging, "gcp", tmp_path)
    with TestClient(create_app(settings)) as client:
        meta = client.get("/metadata").json()
    assert (meta["model_version"], meta["registry_uri"]) == (manifest["version"], settings.model_registry_uri)


def test_without_cloud_register_and_promote_fill_the_registry_of_every_cloud(
    gcs_host: str, buckets: dict[str, Environment], trained: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """dev and staging have both clouds: the GKE serving reads GCS, the EKS and Lambda serving S3;
    a register or promote that filled one would leave the other serving nothing."""
    import google.cloud.storage as storage

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_host)
    dev, staging = buckets["dev"], buckets["staging"]
    for env in (dev, staging):
        client = storage.Client(project=env.gcp.project_id)  # type: ignore[union-attr]
        if client.bucket(env.model_bucket("gcp")).exists():
            for blob in client.list_blobs(env.model_bucket("gcp")):
                blob.delete()
        else:
            client.create_bucket(env.model_bucket("gcp"))
    assert main(["model", "register", "dev", str(trained)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["registered_in"] == ["aws", "gcp"]
    assert registry(dev, "aws").alias("latest") == registry(dev, "gcp").alias("latest") == out["version"]
    assert main(["model", "promote", "--from", "dev", "--to", "staging"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["clouds"]) == {"aws", "gcp"}
    for cloud in ("aws", "gcp"):
        assert registry(staging, cloud).alias(staging.models.alias) == out["version"]  # type: ignore[union-attr, arg-type]


def test_a_version_file_left_with_other_bytes_is_refused_and_the_same_bytes_resume(buckets: dict[str, Environment], trained: Path) -> None:
    """Every file of a version is written only if absent (the bucket policy refuses any other
    write there): an interrupted register resumes, a different file under the version is refused."""
    dev = buckets["dev"]
    directory = trained / (trained / "LATEST").read_text().strip()
    version = json.loads((directory / "metadata.json").read_text())["version"]
    s3 = boto3.client("s3", region_name="us-east-1")
    key = f"models/wine-cultivar/{version}/model.joblib"
    s3.put_object(Bucket=dev.model_bucket("aws"), Key=key, Body=(directory / "model.joblib").read_bytes())
    assert register(dev, trained, cloud="aws")["version"] == version  # the same bytes: resumed
    s3.delete_object(Bucket=dev.model_bucket("aws"), Key=f"models/wine-cultivar/{version}/manifest.json")
    s3.put_object(Bucket=dev.model_bucket("aws"), Key=key, Body=b"not the model")
    with pytest.raises(RegistryRefused, match="exists with other bytes"):
        register(dev, trained, cloud="aws")
    assert s3.get_object(Bucket=dev.model_bucket("aws"), Key=key)["Body"].read() == b"not the model"


def test_the_pinned_content_digest_is_what_the_promotion_copies(
    buckets: dict[str, Environment], trained: Path, env_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """models.digest pins a version's content: a version re-registered under the same name with
    other files (in a registry that allowed it) is not promoted."""
    from infra.model_registry import candidate, content_digest, pin

    dev = buckets["dev"]
    manifest = register(dev, trained, cloud="aws")
    result = candidate(dev, buckets["staging"], cloud="aws")
    assert result["digest"] == content_digest(manifest) and result["digest"].startswith("sha256:")
    # the digest is of the content alone: a promoted copy's extra fields do not change it
    assert content_digest({**manifest, "promoted_from": "dev", "registered_at": "later"}) == result["digest"]

    path = env_dir / "staging.yaml"
    assert main(["model", "pin", "staging", manifest["version"], "--digest", result["digest"], "--env-dir", str(env_dir)]) == 0
    text = path.read_text()
    assert text.index(f"  version: {manifest['version']}\n") < text.index(f"  digest: {result['digest']}\n")  # next to the version
    envs = load_environments(env_dir)
    assert envs["staging"].models.digest == result["digest"]  # type: ignore[union-attr]
    assert promote(envs, "dev", "staging", manifest["version"], cloud="aws")["version"] == manifest["version"]

    wrong = "sha256:" + "0" * 64
    assert pin(manifest["version"], path, wrong) is True
    envs = load_environments(env_dir)
    with pytest.raises(RegistryRefused, match="not the version that was reviewed"):
        promote(envs, "dev", "staging", manifest["version"], cloud="aws")
    capsys.readouterr()
    assert main(["model", "show", "dev", manifest["version"], "--cloud", "aws"]) == 0
    assert json.loads(capsys.readouterr().out)["digest"] == result["digest"]


def test_a_digest_without_a_version_is_refused_naming_the_field(env_dir: Path) -> None:
    from environments.loader import EnvironmentFileError

    data = read_env(env_dir, "staging")
    data["models"].pop("version", None)
    data["models"]["digest"] = "sha256:" + "a" * 64
    write_env(env_dir, "staging", data)
    with pytest.raises(EnvironmentFileError, match=r"staging\.yaml.*models\.digest: a digest pins the content of models\.version"):
        load_environments(env_dir)


def test_ready_says_what_each_environment_needs_before_its_workloads_serve(
    buckets: dict[str, Environment], trained: Path, env_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty registry makes the model server unready and the atomic Helm release roll back: the
    deploy checks first and says what to do (dev: train; staging: pin a version)."""
    assert main(["model", "ready", "dev", "--cloud", "aws", "--env-dir", str(env_dir)]) == 1
    assert "gh workflow run train.yml" in capsys.readouterr().err
    assert main(["model", "ready", "staging", "--cloud", "aws", "--env-dir", str(env_dir)]) == 1
    assert "infra model pin staging VERSION" in capsys.readouterr().err
    version = register(buckets["dev"], trained, cloud="aws")["version"]
    assert main(["model", "ready", "dev", "--cloud", "aws", "--env-dir", str(env_dir)]) == 0
    assert f"latest → {version}" in capsys.readouterr().err
    from infra.model_registry import pin

    pin(version, env_dir / "staging.yaml")
    assert main(["model", "ready", "staging", "--cloud", "aws", "--env-dir", str(env_dir)]) == 1
    assert f"models.version {version} was not promoted" in capsys.readouterr().err
    promote(load_environments(env_dir), "dev", "staging", version, cloud="aws")
    assert main(["model", "ready", "staging", "--cloud", "aws", "--env-dir", str(env_dir)]) == 0
