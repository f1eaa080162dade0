"""The GCP half of ``infra smoke``: the real google-cloud-container and artifact-registry clients
(REST transport) against a local HTTP server answering what a deployed environment would, built
from the synthesized JSON; one failing case per check."""

from __future__ import annotations

import copy
import http.server
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from environments.schema import Environment
from infra.smoke import expected, smoke
from tests.servers import http_server


class _Google(http.server.BaseHTTPRequestHandler):
    routes: dict[str, dict[str, Any]] = {}
    seen: list[str] = []

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        _Google.seen.append(path)
        body = _Google.routes.get(path)
        data = json.dumps(body if body is not None else {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}).encode()
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


def deployed(outdir: Path) -> dict[str, dict[str, Any]]:
    """What the GKE and Artifact Registry APIs return for staging once deployed as declared."""
    exp, _ = expected(outdir, "staging")
    assert exp.gke and exp.gcp_project
    pools = []
    for p in exp.gke["pools"]:
        config: dict[str, Any] = {"machineType": p["machine_type"], "spot": p["spot"]}
        if p["accelerator"]:
            config["accelerators"] = [{"acceleratorType": p["accelerator"][0], "acceleratorCount": str(p["accelerator"][1])}]
        pools.append(
            {"name": p["name"], "status": "RUNNING", "config": config,
             "autoscaling": {"enabled": True, "minNodeCount": p["min"], "maxNodeCount": p["max"]}}
        )  # fmt: skip
    base = f"/v1/projects/{exp.gcp_project}/locations"
    routes = {f"{base}/{exp.gke['location']}/clusters/{exp.gke['name']}": {"name": exp.gke["name"], "status": "RUNNING",
                                                                          "currentMasterVersion": "1.34.1-gke.100", "nodePools": pools}}  # fmt: skip
    for repo in exp.artifact_registries:
        routes[f"{base}/{repo['location']}/repositories/{repo['id']}"] = {
            "name": f"projects/{exp.gcp_project}/locations/{repo['location']}/repositories/{repo['id']}",
            "format": "DOCKER",
            "dockerConfig": {"immutableTags": repo["immutable"]},
        }
    return routes


@pytest.fixture
def google_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Google]]:
    with http_server(_Google) as url:
        monkeypatch.setenv("GOOGLE_API_ENDPOINT", url)
        _Google.seen.clear()
        yield _Google


def _break(routes: dict[str, dict[str, Any]], case: str) -> tuple[str, str, str]:
    cluster = next(v for k, v in routes.items() if "/clusters/" in k)
    gpu = next(p for p in cluster["nodePools"] if p.get("config", {}).get("accelerators"))
    if case == "cluster-status":
        cluster["status"] = "RECONCILING"
        return "gke-cluster", "mlp-staging-gke", "RECONCILING"
    if case == "pool-autoscaling":
        gpu["autoscaling"]["maxNodeCount"] = 1
        return "gke-node-pool", gpu["name"], "autoscaling on 0..1, declared 0..3"
    if case == "pool-missing":
        cluster["nodePools"].remove(gpu)
        return "gke-node-pool", gpu["name"], "not in the cluster"
    if case == "pool-accelerator":
        gpu["config"]["accelerators"] = []
        return "gke-node-pool", gpu["name"], "accelerators [], declared"
    if case == "registry-mutable":
        repo = next(v for k, v in routes.items() if "/repositories/" in k)
        repo["dockerConfig"]["immutableTags"] = False
        return "artifact-registry", "mlp-staging-model-server", "immutable tags False"
    key = next(k for k in routes if "/repositories/" in k)
    del routes[key]
    return "artifact-registry", "mlp-staging-model-server", "not found (404)"


def test_gcp_smoke_passes_on_what_the_stack_declares(
    google_api: type[_Google], synth_out: Path, environments: dict[str, Environment]
) -> None:
    google_api.routes = deployed(synth_out)
    report = smoke(environments["staging"], synth_out, clouds=("gcp",), commit="c")
    assert report.passed, report.failed
    assert [c.check for c in report.checks] == ["gke-cluster", "gke-node-pool", "gke-node-pool", "artifact-registry"]
    assert sorted(google_api.seen) == sorted(google_api.routes)  # exactly the declared resources were read


@pytest.mark.parametrize(
    "case", ["cluster-status", "pool-autoscaling", "pool-missing", "pool-accelerator", "registry-mutable", "registry-missing"]
)
def test_gcp_smoke_fails_per_check(case: str, google_api: type[_Google], synth_out: Path, environments: dict[str, Environment]) -> None:
    routes = copy.deepcopy(deployed(synth_out))
    check, resource, detail = _break(routes, case)
    google_api.routes = routes
    report = smoke(environments["staging"], synth_out, clouds=("gcp",), commit="c")
    failed = {(c.check, c.resource): c.detail for c in report.failed}
    assert (check, resource) in failed, report.checks
    assert detail in failed[(check, resource)]
