"""One world for the preflight tests, seeded once per module and restored before each test:

* a staging environment file with every example value replaced (``real_staging``);
* moto (the session's server) as that account, after ``infra bootstrap`` ran there and the
  images it pins were pushed to ECR;
* the AWS calls moto lacks (service quotas, Lambda account settings, EKS versions) on
  :class:`tests.fakes.aws.AwsGaps`;
* the Google APIs (:mod:`tests.fakes.google`) after ``infra bootstrap`` ran there, with quotas,
  offerings, the RBAC group, a complete Cloud Build connection and the pinned image;
* GitHub (:mod:`tests.fakes.github`) with the environments protected as the docs say.

A failing case changes one thing: the environment file (``world.edit``), a fake's state, or moto.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from environments.loader import ENV_DIR, environment_files, load_environments
from environments.schema import Environment
from environments.schema.identity import OIDC_CLAIM_KEYS
from tests.fakes.aws import AwsGaps, aws_gaps, moto_credentials
from tests.fakes.github import Environment as GhEnvironment
from tests.fakes.github import GitHubState, fake_github
from tests.fakes.google import BillingAccount, GoogleState, fake_google, project_for

ACCOUNT = "210987654321"
NUMBER = "444555666777"
REPO = "mlp-corp/platform"
REPLACE = {
    "222222222222": ACCOUNT,
    "01A2B3-C4D5E6-F7A8B9": "0A1B2C-3D4E5F-6A7B8C",
    "100000000002": NUMBER,
    "@example.com": "@mlp-corp.io",
    "acme-ml/ml-platform": REPO,
    "github_owner: acme-ml": "github_owner: mlp-corp",
    "github_repo: ml-platform": "github_repo: platform",
}
SINGLE = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"


def manifest(media_type: str, tag: str) -> str:
    if media_type == INDEX:
        return json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": [{"mediaType": SINGLE, "digest": "sha256:" + "1" * 64, "size": 1,
                           "platform": {"architecture": "amd64", "os": "linux"}}]})  # fmt: skip
    return json.dumps({"schemaVersion": 2, "mediaType": media_type, "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": "sha256:" + tag.encode().hex().ljust(64, "0")[:64], "size": 1}, "layers": []})  # fmt: skip


@dataclass
class World:
    env_dir: Path
    gaps: AwsGaps
    google: GoogleState
    github: GitHubState
    saved: dict[str, Any] = field(default_factory=dict)
    undo: list[Callable[[], None]] = field(default_factory=list)  # puts moto back after a test changed it

    @property
    def file(self) -> Path:
        return self.env_dir / "staging.yaml"

    def edit(self, change: Callable[[dict[str, Any]], None]) -> None:
        """Change the staging file (its parsed YAML), as a person would."""
        data = yaml.safe_load(self.file.read_text())
        change(data)
        self.file.write_text(yaml.safe_dump(data, sort_keys=False))

    def env(self) -> Environment:
        return load_environments(self.env_dir)["staging"]

    def save(self) -> None:
        self.saved = {"file": self.file.read_text(), "gaps": copy.deepcopy(self.gaps.__dict__),
                      "google": copy.deepcopy({k: v for k, v in self.google.__dict__.items() if k != "ids"}),
                      "github": copy.deepcopy(self.github.__dict__)}  # fmt: skip

    def restore(self) -> None:
        while self.undo:
            self.undo.pop()()
        self.file.write_text(self.saved["file"])
        self.gaps.__dict__.update(copy.deepcopy(self.saved["gaps"]))
        self.google.__dict__.update(copy.deepcopy(self.saved["google"]))
        self.github.__dict__.update(copy.deepcopy(self.saved["github"]))


def real_staging(target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for f in [*environment_files(ENV_DIR), ENV_DIR / "facts.yaml"]:
        shutil.copy(f, target / f.name)
    text = (target / "staging.yaml").read_text()
    for old, new in REPLACE.items():
        text = text.replace(old, new)
    (target / "staging.yaml").write_text(text)


def eks_versions(**ends: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        {"clusterVersion": v, "versionStatus": "STANDARD_SUPPORT", "endOfStandardSupportDate": (now + timedelta(days=d)).isoformat(),
         "endOfExtendedSupportDate": (now + timedelta(days=d + 365)).isoformat()}
        for v, d in ends.items()
    ]  # fmt: skip


def _push(ecr: Any, repository: str, tag: str, media_type: str) -> None:
    ecr.put_image(repositoryName=repository, imageTag=tag, imageManifest=manifest(media_type, tag), imageManifestMediaType=media_type)


@pytest.fixture(scope="module")
def world(moto_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    import boto3

    from infra.bootstrap import bootstrap
    from tests.servers import moto_reset

    env_dir = tmp_path_factory.mktemp("preflight") / "environments"
    real_staging(env_dir)
    env = load_environments(env_dir)["staging"]
    gaps = AwsGaps(cluster_versions=eks_versions(**{"1.33": 90, "1.34": 200, "1.35": 400}))
    gaps.quotas = {("ec2", "L-DB2E81BA"): (None, 64.0), ("ec2", "L-3819A6DF"): (64.0, 64.0), ("ec2", "L-1216C47A"): (64.0, 1152.0)}
    google = GoogleState()
    google.projects[env.gcp.project_id] = project_for(env, NUMBER)  # type: ignore[union-attr]
    google.billing[env.gcp.billing_account] = BillingAccount(env.gcp.billing_account)  # type: ignore[union-attr]
    # production, bootstrapped before staging (its deploy account is named in staging's promotion grants)
    production = load_environments(env_dir)["production"]
    google.projects[production.gcp.project_id] = project_for(production, "555666777888")  # type: ignore[union-attr]
    reader = str(production.gcp_service_account("deploy"))
    google.projects[production.gcp.project_id].service_accounts[reader] = {  # type: ignore[union-attr]
        "name": f"projects/{production.gcp.project_id}/serviceAccounts/{reader}", "email": reader,  # type: ignore[union-attr]
        "projectId": production.gcp.project_id, "disabled": False, "policy": {"version": 1, "etag": "BwE=", "bindings": []},  # type: ignore[union-attr]
    }  # fmt: skip
    github = GitHubState(repository=REPO)
    with pytest.MonkeyPatch.context() as mp, aws_gaps(gaps) as gaps_url, fake_google(google) as google_url, fake_github(github) as gh_url:
        moto_reset(moto_url)
        key, secret = moto_credentials(moto_url, ACCOUNT)
        for name, value in {
            "AWS_ENDPOINT_URL": moto_url, "AWS_ENDPOINT_URL_SERVICE_QUOTAS": gaps_url, "AWS_ENDPOINT_URL_LAMBDA": gaps_url,
            "AWS_ENDPOINT_URL_EKS": gaps_url, "AWS_ENDPOINT_URL_CODESTAR_CONNECTIONS": gaps_url, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret, "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "GOOGLE_API_ENDPOINT": google_url,
            "GITHUB_API_URL": gh_url, "GITHUB_TOKEN": "fake-token",
        }.items():  # fmt: skip
            mp.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            mp.delenv(name, raising=False)
        mp.setattr(boto3, "DEFAULT_SESSION", None)
        result = bootstrap(env, clouds=("aws", "gcp"), check_account=True)
        assert not result.findings, result.findings
        assert gaps.connections == {env.github_connection_name: "PENDING"}  # made by bootstrap
        gaps.connections[env.github_connection_name] = "AVAILABLE"  # the console handshake, by a person
        ecr = boto3.client("ecr", region_name="us-east-1")
        repository = env.resource_name("model-server")
        ecr.create_repository(repositoryName=repository)
        _push(ecr, repository, "v1.0.0", SINGLE)
        _push(ecr, repository, "v1.0.0-lambda", "application/vnd.docker.distribution.manifest.v2+json")
        _push(ecr, repository, "v1.0.0-lambda-attested", INDEX)
        project = google.projects[env.gcp.project_id]  # type: ignore[union-attr]
        project.images[f"us-central1/{repository}/model-server"] = {"v1.0.0": "sha256:" + "2" * 64}
        project.connections[("us-central1", "github")] = {"name": "github", "installationState": {"stage": "COMPLETE"}}
        google.groups.add("gke-security-groups@mlp-corp.io")
        github.environments["staging"] = GhEnvironment(name="staging", custom_branches=["staging"])
        github.environments["staging-plan"] = GhEnvironment(name="staging-plan", reviewers=[("Team", "platform")])
        github.oidc_sub = {"use_default": False, "include_claim_keys": list(OIDC_CLAIM_KEYS)}
        w = World(env_dir, gaps, google, github)
        w.save()
        yield w


@pytest.fixture
def fresh(world: World) -> Iterator[World]:
    """The seeded world, as it was before the test changed it."""
    world.restore()
    yield world
    world.restore()
