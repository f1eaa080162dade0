"""The whole path of a merge into `staging`, as far as it runs without a cloud: the matrix for the
merge (in a temporary git repository), the state bootstrapped on a moto server, the provider-free
deploy through the bundled engine with its state in that bucket (S3 lock file), and the smoke checks
on seeded resources, whose record is the evidence the promotion to production carries."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from environments.loader import ENV_DIR, environment_files, load_environments
from infra.bootstrap import TLS_SID, bootstrap
from infra.ci_matrix import changed_since, matrix
from infra.cli.app import main
from infra.deploy.gate import Reviewed, apply_deploy, plan_deploy
from infra.git import git
from infra.smoke import smoke
from tests.fakes.aws import AwsGaps
from tests.seed import seed
from tests.servers import engine_example

pytestmark = pytest.mark.slow


@pytest.fixture
def aws_tls(tmp_path: Path, aws_gaps_server: tuple[AwsGaps, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto server over HTTPS with a certificate both boto3 and the Terraform engine verify: the
    state bucket's TLS-only policy denies plain HTTP, in moto as in AWS. (CodeStar Connections: the
    gaps fake.)"""
    from tests.servers import moto_server, self_signed

    cert, key = self_signed(tmp_path)
    aws_gaps_server[0].reset()
    with moto_server(tls=(cert, key)) as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_CODESTAR_CONNECTIONS", aws_gaps_server[1])
        monkeypatch.setenv("AWS_CA_BUNDLE", str(cert))  # boto3
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # Go's TLS in the bundled Terraform
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        yield url


def test_merge_into_staging_bootstrap_deploy_smoke(aws_tls: str, synth_out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 1. a repository with the environment files; develop gets a change, then merges into staging
    repo = tmp_path / "repo"
    (repo / "environments").mkdir(parents=True)
    for f in [*environment_files(ENV_DIR), ENV_DIR / "facts.yaml"]:
        shutil.copy(f, repo / "environments" / f.name)
    git(repo, "init", "-q", "-b", "staging")
    git(repo, "config", "user.email", "ci@example.com")
    git(repo, "config", "user.name", "ci")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "initial")
    before = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "switch", "-q", "-c", "develop")
    staging_file = repo / "environments" / "staging.yaml"
    staging_file.write_text(staging_file.read_text().replace("monthly_usd: 4000", "monthly_usd: 4200").replace("aws: 2400", "aws: 2600"))
    git(repo, "commit", "-qam", "staging budget")
    git(repo, "switch", "-q", "staging")
    git(repo, "merge", "-q", "--no-ff", "develop", "-m", "Merge develop into staging")
    paths = changed_since(before, repo)
    assert paths == ["environments/staging.yaml"]
    result = matrix("staging", paths, repo / "environments")
    assert result["envs"] == ["staging"] and result["infra"] is True and result["app"] is False
    row = result["matrix"]["include"][0]
    assert row["aws_deploy_role"] == "arn:aws:iam::222222222222:role/mlp-staging-github-deploy"

    # 2. staging's state and roles, made before the first deploy
    staging = load_environments(repo / "environments")["staging"]
    assert bootstrap(staging).changed
    assert not bootstrap(staging).changed
    s3 = boto3.client("s3", region_name="us-east-1")
    policy = json.loads(s3.get_bucket_policy(Bucket=staging.state.bucket)["Policy"])
    assert [st["Sid"] for st in policy["Statement"]] == [TLS_SID]
    # moto evaluates bucket-policy conditions without the request's context (aws:SecureTransport is
    # never set), so there the TLS-only Deny denies every object request, HTTPS too; AWS does not.
    # Checked above, it is removed for the engine's turn.
    s3.delete_bucket_policy(Bucket=staging.state.bucket)

    # 3. the provider-free stack, its state in that bucket: reviewed (real plan), then deployed
    example = engine_example()
    monkeypatch.setenv("STATE_BUCKET", staging.state.bucket)
    monkeypatch.setenv("MODEL_VERSION", "v1")
    out = tmp_path / "cdktf.out"
    example.build(str(out)).synth()
    review = tmp_path / "review.json"
    assert main(["plan", "staging", "--outdir", str(out), "--format", "json", "-o", str(review)]) == 1
    # the post-merge plan takes no lock (the plan role cannot write the lock file); the apply does
    record = plan_deploy(out, "staging", Reviewed.load(review, "staging"), commit="b" * 40, review={"file": str(review)})
    assert not s3.list_object_versions(Bucket=staging.state.bucket, Prefix="example/").get("Versions")
    applied = apply_deploy(out, "staging", record, only=["staging"])
    assert applied.stacks[0].applied == ["create terraform_data.endpoint", "create terraform_data.model"]
    state = json.loads(s3.get_object(Bucket=staging.state.bucket, Key="example/staging/terraform.tfstate")["Body"].read())
    assert state["outputs"]["model_output"]["value"] == "model-v1"
    listing = s3.list_object_versions(Bucket=staging.state.bucket, Prefix="example/")
    locks = [v for v in listing.get("Versions", []) if v["Key"].endswith(".tflock")]
    released = [d for d in listing.get("DeleteMarkers", []) if d["Key"].endswith(".tflock") and d["IsLatest"]]
    assert locks and released  # the S3 lock file was taken and released (versioning keeps the trace)

    # 4. the smoke checks on what staging declares (seeded as a deploy would leave it): the evidence
    env = load_environments()["staging"]
    seed(synth_out, "staging", serving_ref=f"{env.resource_name('model-server')}:{env.serving.image_tag}")  # type: ignore[union-attr]
    report = smoke(env, synth_out, health=False, commit=git(repo, "rev-parse", "HEAD").strip(), clouds=("aws",))
    assert report.passed and {i.field for i in report.images} == {"serving", "aws.endpoints[0]"}
