"""The GCS state bucket on the GCS emulator, and ``infra bootstrap`` through the CLI (formats, exit codes)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from environments.loader import load_environments
from infra.bootstrap import bootstrap
from infra.cli.app import main
from tests.conftest import read_env, write_env


def test_bootstrap_cli_json_and_exit_codes(as_account: Callable[[str], None], capsys: pytest.CaptureFixture[str]) -> None:
    as_account("111111111111")
    assert main(["bootstrap", "dev", "--cloud", "aws", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["changed"] and report["findings"] == []
    assert report["steps"][0] == {"what": "OIDC provider token.actions.githubusercontent.com", "status": "created", "detail": ""}
    assert {"what": "s3://mlp-tfstate-111111111111", "status": "created", "detail": "us-east-1"} in report["steps"]
    assert main(["bootstrap", "dev", "--cloud", "aws", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is False
    assert main(["bootstrap", "dev", "--cloud", "aws", "--format", "markdown"]) == 0
    assert "| OIDC provider token.actions.githubusercontent.com | unchanged |" in capsys.readouterr().out
    assert main(["bootstrap", "nope"]) == 2
    assert main(["bootstrap", "dev", "--cloud", "azure"]) == 2
    assert "--cloud ['azure']: one of aws, gcp" in capsys.readouterr().err


def test_bootstrap_cli_refusal_exits_1(as_account: Callable[[str], None], capsys: pytest.CaptureFixture[str]) -> None:
    as_account("999999999999")  # credentials of another account than dev's
    assert main(["bootstrap", "dev", "--cloud", "aws"]) == 1
    assert "these credentials are for account 999999999999, dev names aws.account_id 111111111111" in capsys.readouterr().err


def test_bootstrap_cli_missing_ci_section_exits_2(env_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = read_env(env_dir, "dev")
    del data["ci"]
    write_env(env_dir, "dev", data)
    assert main(["bootstrap", "dev", "--env-dir", str(env_dir)]) == 2
    assert "dev: ci: missing" in capsys.readouterr().err


@pytest.fixture(scope="module")
def gcs_host() -> Iterator[str]:
    from tests.servers import gcs_emulator

    with gcs_emulator() as url:
        yield url


def test_bootstrap_gcs_state_bucket(gcs_host: str, env_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_host)
    data = read_env(env_dir, "dev")
    data["state"] = {"backend": "gcs", "bucket": "mlp-dev-tfstate-gcs"}
    write_env(env_dir, "dev", data)
    env = load_environments(env_dir)["dev"]
    first = bootstrap(env, roles=False, clouds=("gcp",))
    assert first.steps[0].status == "created"
    from google.cloud import storage

    client = storage.Client(project=env.gcp.project_id)  # type: ignore[union-attr]
    bucket = client.get_bucket("mlp-dev-tfstate-gcs")
    assert bucket.versioning_enabled is True
    assert bucket.iam_configuration.uniform_bucket_level_access_enabled is True
    assert bucket.iam_configuration.public_access_prevention == "enforced"
    # the emulator's insert keeps no metadata (the settings above came from bootstrap's read-back
    # and patch) and reports location "US"; give it the location a real insert keeps
    bucket.location = "US-CENTRAL1"
    bucket.patch()
    second = bootstrap(env, roles=False, clouds=("gcp",))
    assert [(s.what, s.status) for s in second.steps] == [("gs://mlp-dev-tfstate-gcs", "unchanged")]
    bucket.versioning_enabled = False
    bucket.patch()
    third = bootstrap(env, roles=False, clouds=("gcp",))
    assert [(s.status, s.detail) for s in third.steps] == [("updated", "versioning")]
