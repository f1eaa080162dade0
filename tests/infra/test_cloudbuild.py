"""``cloudbuild.yaml`` and ``infra cloudbuild submit``: the real google-cloud-build client (REST
transport) pointed at a local HTTP server that records the request; the source upload goes to the
GCS emulator. Both on 127.0.0.1."""

from __future__ import annotations

import http.server
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import yaml

from environments.schema import Environment
from infra.cli.app import main
from infra.cloudbuild import CONFIG, build_request
from tests.conftest import ROOT
from tests.servers import http_server


class _CloudBuild(http.server.BaseHTTPRequestHandler):
    requests: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _CloudBuild.requests.append({"path": self.path, "body": body, "headers": dict(self.headers)})
        operation = {
            "name": "projects/p/locations/us-central1/operations/op-1",
            "metadata": {
                "@type": "type.googleapis.com/google.devtools.cloudbuild.v1.BuildOperationMetadata",
                "build": {"id": "build-123", "logUrl": "https://console.cloud.google.com/cloud-build/builds/build-123", "status": "QUEUED"},
            },
        }
        data = json.dumps(operation).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def cloudbuild_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with http_server(_CloudBuild) as url:
        monkeypatch.setenv("CLOUDBUILD_API_ENDPOINT", url)
        _CloudBuild.requests.clear()
        yield url


@pytest.fixture(scope="module")
def gcs_host() -> Iterator[str]:
    from tests.servers import gcs_emulator

    with gcs_emulator() as url:
        yield url


def test_cloudbuild_yaml_tests_builds_and_pushes_both_images() -> None:
    doc = yaml.safe_load(CONFIG.read_text())
    steps = {s["id"]: s for s in doc["steps"]}
    assert "pytest" in " ".join(steps["test"]["args"])
    for target in ("service", "lambda"):
        step = steps[f"build-{target}"]
        assert step["waitFor"] == ["test"] and ["--target", target] == step["args"][3:5]
    tags = [a for s in ("build-service", "build-lambda") for a in steps[s]["args"] if a.startswith("${_IMAGE_REPOSITORY}")]
    assert sorted(doc["images"]) == sorted(tags)  # every built image is pushed, nothing else
    # the substitutions the GCP build triggers set are the ones the file reads
    trigger = (ROOT / "stacks" / "gcp" / "build.py").read_text()
    for name in ("_ENVIRONMENT", "_REGION", "_IMAGE_REPOSITORY"):
        assert name in doc["substitutions"] and f'"{name}"' in trigger
    # the test step runs test files that exist
    for arg in steps["test"]["args"][1].split():
        if arg.startswith("tests/"):
            assert (ROOT / arg).is_file(), arg


def test_submit_sends_the_build_the_client_makes(
    cloudbuild_api: str,
    gcs_host: str,
    monkeypatch: pytest.MonkeyPatch,
    environments: dict[str, Environment],
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_host)
    assert main(["cloudbuild", "submit", "staging"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["build_id"] == "build-123"
    [request] = _CloudBuild.requests
    # the client's REST binding for create_build with both project_id and parent: the regional parent
    # travels as a query parameter
    path, _, query = request["path"].partition("?")
    assert path == "/v1/projects/mlp-staging-4410/builds"
    assert parse_qs(query)["parent"] == ["projects/mlp-staging-4410/locations/us-central1"]
    build = request["body"]
    env = environments["staging"]
    assert build["substitutions"]["_IMAGE_REPOSITORY"] == env.artifact_registry_url("model-server")
    assert build["substitutions"]["_ENVIRONMENT"] == "staging" and len(build["substitutions"]["_GIT_SHA"]) == 40
    assert [s["id"] for s in build["steps"]] == ["test", "build-service", "build-lambda"]
    # enums travel as numbers ($alt=json;enum-encoding=int): VERIFIED is 1
    assert build["options"]["requestedVerifyOption"] == 1 and build["timeout"] == "1800s"
    source = build["source"]["storageSource"]
    assert source["bucket"] == "mlp-staging-4410_cloudbuild"
    # the uploaded source is the tracked files, cloudbuild.yaml and the Dockerfile among them
    from google.cloud import storage

    blob = storage.Client(project="mlp-staging-4410").bucket(source["bucket"]).blob(source["object"]).download_as_bytes()
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        names = tar.getnames()
    assert "cloudbuild.yaml" in names and "app/Dockerfile" in names and not any(n.startswith(".venv") for n in names)


def test_build_request_refuses_unknown_registry(environments: dict[str, Environment], tmp_path: Path) -> None:
    with pytest.raises(Exception, match="not an Artifact Registry repository"):
        build_request(environments["dev"], "nope", "0" * 40)
    broken = tmp_path / "cloudbuild.yaml"
    broken.write_text("steps: []\n")
    with pytest.raises(Exception, match="no steps"):
        build_request(environments["dev"], "model-server", "0" * 40, broken)
