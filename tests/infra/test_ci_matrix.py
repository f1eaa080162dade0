"""``infra ci-matrix``: branches map to environments through the environment files only; changed
paths decide which halves of the pipeline run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from environments.loader import EnvironmentFileError
from infra.ci_matrix import changed_since, classify, matrix
from infra.cli.app import main
from infra.git import git
from tests.conftest import read_env, write_env


@pytest.mark.parametrize(
    ("paths", "infra", "app"),
    [
        (["app/service.py"], False, True),
        (["cloudbuild.yaml"], False, True),
        (["docs/review.md", "README.md"], False, False),
        (["tests/infra/test_cli.py"], False, False),
        (["environments/staging.yaml"], True, False),
        (["stacks/aws/cluster.py"], True, False),
        (["app/k8s.py"], True, True),  # renders the serving workload into the workloads stacks
        (["charts/model-server/values.yaml"], True, False),
        (["infra/policy/rules.py"], True, False),
        (["Makefile"], True, True),  # unknown: both, to be safe
        ([], False, False),
    ],
)
def test_paths_decide_the_jobs(paths: list[str], infra: bool, app: bool) -> None:
    scope = classify(paths)
    assert (scope.infra, scope.app) == (infra, app)


def test_branch_maps_to_its_environment(env_dir: Path) -> None:
    assert matrix("staging", None, env_dir)["envs"] == ["staging"]
    assert matrix("refs/heads/main", None, env_dir)["envs"] == ["production"]
    feature = matrix("feature/x", None, env_dir)
    assert feature["envs"] == [] and feature["matrix"] == {"include": []} and feature["infra"] is False
    assert matrix(None, None, env_dir)["envs"] == ["dev", "staging", "production"]
    row = matrix("staging", None, env_dir)["matrix"]["include"][0]
    assert (row["source_env"], row["source_branch"], row["requires_approval"]) == ("dev", "develop", False)
    assert row["gcp_deploy_service_account"] == "mlp-staging-deploy@mlp-staging-4410.iam.gserviceaccount.com"
    assert row["image_repositories"] == {
        "aws": ["222222222222.dkr.ecr.us-east-1.amazonaws.com/mlp-staging-model-server"],
        "gcp": ["us-central1-docker.pkg.dev/mlp-staging-4410/mlp-staging-model-server/model-server"],
    }
    # the mapping moves with the file: no second copy anywhere
    data = read_env(env_dir, "staging")
    data["branch"] = "release"
    write_env(env_dir, "staging", data)
    assert matrix("release", None, env_dir)["envs"] == ["staging"] and matrix("staging", None, env_dir)["envs"] == []
    data["branch"] = "develop"
    write_env(env_dir, "staging", data)
    with pytest.raises(EnvironmentFileError, match=r"staging.yaml:[0-9]+: branch: 'develop' is also followed by .*dev.yaml"):
        matrix("develop", None, env_dir)


def test_app_only_change_skips_infrastructure(env_dir: Path) -> None:
    result = matrix("develop", ["app/model.py"], env_dir)
    assert (result["infra"], result["app"], result["envs"]) == (False, True, ["dev"])


def test_changed_since_reads_git(tmp_path: Path) -> None:
    def run(*args: str) -> str:
        return git(tmp_path, *args).strip()

    run("init", "-q", "-b", "main")
    run("config", "user.email", "t@example.com")
    run("config", "user.name", "t")
    (tmp_path / "a.txt").write_text("1")
    run("add", ".")
    run("commit", "-qm", "one")
    first = run("rev-parse", "HEAD")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "x.py").write_text("2")
    run("add", ".")
    run("commit", "-qm", "two")
    assert changed_since(first, tmp_path) == ["app/x.py"]
    assert changed_since("0" * 40, tmp_path) is None  # a new branch: everything
    assert changed_since("deadbeef", tmp_path) is None


def test_cli_writes_github_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["ci-matrix", "--branch", "main", "--changed-files", "docs/x.md", "--github-output", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    lines = dict(line.split("=", 1) for line in out.read_text().splitlines())
    assert json.loads(lines["matrix"]) == printed["matrix"] and lines["infra"] == "false" and lines["app"] == "false"
    assert json.loads(lines["envs"]) == ["production"]
