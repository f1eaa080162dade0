"""``infra smoke`` against a moto server seeded from the synthesized JSON: all pass, then one
failing case per check, each naming what to roll back."""

from __future__ import annotations

import http.server
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from environments.schema import Environment
from infra.cli.app import main
from infra.smoke import SmokeReport, _health, expected, smoke
from tests.seed import seed
from tests.servers import http_server


@pytest.fixture
def staging_seeded(aws: str, synth_out: Path, environments: Environment) -> dict[str, Any]:
    env = environments["staging"]  # type: ignore[index]
    return seed(synth_out, "staging", serving_ref=f"{env.resource_name(env.serving.registry)}:{env.serving.image_tag}")


def test_expected_values_come_from_the_synthesized_json(synth_out: Path) -> None:
    exp, digest = expected(synth_out, "staging")
    assert exp.cluster == {"name": "mlp-staging-eks", "version": "1.35"}
    assert {g["name"]: (g["min"], g["max"], g["capacity_type"]) for g in exp.node_groups} == {
        "mlp-staging-ng-system": (2, 4, "ON_DEMAND"),
        "mlp-staging-ng-l4": (0, 3, "SPOT"),
    }
    assert exp.functions == [
        {
            "name": "mlp-staging-predict",
            "reserved_concurrency": 10,
            "url_auth": "AWS_IAM",
            "repository": "mlp-staging-model-server",
            "reference": ":v1.0.0-lambda",
        }
    ]
    assert exp.repositories == [{"name": "mlp-staging-model-server", "scan_on_push": True, "mutability": "IMMUTABLE"}]
    assert exp.region == "us-east-1" and len(digest) == 64


def test_smoke_passes_on_what_the_stack_declares(
    staging_seeded: dict[str, Any], synth_out: Path, environments: dict[str, Environment]
) -> None:
    report = smoke(environments["staging"], synth_out, commit="abc123", clouds=("aws",))
    assert report.passed, report.failed
    kinds = [c.check for c in report.checks]
    assert kinds.count("eks-node-group") == 2 and {"eks-cluster", "ecr-repository", "lambda", "lambda-url", "image"} <= set(kinds)
    health = next(c for c in report.checks if c.check == "health")
    assert health.ok is None and "not reachable" in health.detail  # moto's function URL is not a real host
    by_field = {i.field: i for i in report.images}
    assert by_field["aws.endpoints[0]"].digest == staging_seeded["digests"]["mlp-staging-predict"] and by_field["aws.endpoints[0]"].passed
    assert by_field["serving"].digest == staging_seeded["digests"]["serving"]


def _delete_cluster() -> None:
    eks = boto3.client("eks")
    for group in ("mlp-staging-ng-l4", "mlp-staging-ng-system"):
        eks.delete_nodegroup(clusterName="mlp-staging-eks", nodegroupName=group)
    eks.delete_cluster(name="mlp-staging-eks")


BREAKERS: dict[str, tuple[Callable[[], None], str, str]] = {
    "eks-cluster": (
        _delete_cluster,
        "mlp-staging-eks",
        "not found",
    ),
    "eks-node-group": (
        lambda: boto3.client("eks").update_nodegroup_config(
            clusterName="mlp-staging-eks", nodegroupName="mlp-staging-ng-l4", scalingConfig={"minSize": 1, "maxSize": 2, "desiredSize": 1}
        ),
        "mlp-staging-ng-l4",
        "scaling 1..2, declared 0..3",
    ),
    "ecr-repository": (
        lambda: boto3.client("ecr").put_image_tag_mutability(repositoryName="mlp-staging-model-server", imageTagMutability="MUTABLE"),
        "mlp-staging-model-server",
        "tag mutability MUTABLE, declared IMMUTABLE",
    ),
    "image": (
        lambda: boto3.client("ecr").batch_delete_image(repositoryName="mlp-staging-model-server", imageIds=[{"imageTag": "v1.0.0-lambda"}]),
        "mlp-staging-model-server:v1.0.0-lambda",
        "not in the registry",
    ),
    "lambda": (
        lambda: boto3.client("lambda").put_function_concurrency(FunctionName="mlp-staging-predict", ReservedConcurrentExecutions=3),
        "mlp-staging-predict",
        "reserved concurrency 3, declared 10",
    ),
    "lambda-url": (
        lambda: boto3.client("lambda").update_function_url_config(FunctionName="mlp-staging-predict", AuthType="NONE"),
        "mlp-staging-predict",
        "auth NONE, declared AWS_IAM",
    ),
}


@pytest.mark.parametrize("check", sorted(BREAKERS))
def test_each_check_fails_when_the_cloud_differs(
    check: str, staging_seeded: dict[str, Any], synth_out: Path, environments: dict[str, Environment]
) -> None:
    breaker, resource, detail = BREAKERS[check]
    breaker()
    report = smoke(environments["staging"], synth_out, health=False, commit="0123456789abcdef", clouds=("aws",))
    failed = [(c.check, c.resource) for c in report.failed]
    assert (check, resource) in failed, report.checks
    assert detail in next(c.detail for c in report.failed if (c.check, c.resource) == (check, resource))
    assert "git revert -m 1 0123456789ab" in report.rollback("staging") and "`staging`" in report.rollback("staging")


def test_smoke_cli_records_evidence_and_exits_1_on_failure(
    staging_seeded: dict[str, Any], synth_out: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = tmp_path / "smoke.json"
    assert (
        main(
            ["smoke", "staging", "--outdir", str(synth_out), "--record", str(record), "--no-health", "--commit", "f" * 40, "--cloud", "aws"]
        )
        == 0
    )
    data = json.loads(record.read_text())
    assert data["passed"] and data["commit"] == "f" * 40 and data["env"] == "staging"
    BREAKERS["lambda"][0]()
    assert main(["smoke", "staging", "--outdir", str(synth_out), "--no-health", "--format", "json", "--cloud", "aws"]) == 1
    assert "roll back staging" in capsys.readouterr().err


class _Health(http.server.BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:
        _Health.seen.append(dict(self.headers))
        ok = self.path == "/healthz" and self.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 ")
        self.send_response(200 if ok else 403)
        self.end_headers()
        self.wfile.write(b'{"status":"ok"}' if ok else b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def health_url() -> Iterator[str]:
    with http_server(_Health) as url:
        yield url + "/"


def test_health_is_signed_for_iam_urls(aws: str, health_url: str) -> None:
    report = SmokeReport("staging", "c", "h", "now")
    _health(health_url, "AWS_IAM", "fn", "us-east-1", report, 5)
    _health(health_url, "NONE", "open-fn", "us-east-1", report, 5)
    assert [(c.ok, c.detail.split()[:3]) for c in report.checks] == [
        (True, ["GET", "/healthz", "200"]),
        (False, ["GET", "/healthz", "403"]),
    ]
    assert "lambda/aws4_request" in _Health.seen[0]["Authorization"]
