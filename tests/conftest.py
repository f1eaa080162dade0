"""Shared fixtures. The provider bindings are imported once per test session: every test that
needs synthesized output uses the session's single synth (``synth_out``)."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

import stacks  # noqa: F401  (selects the bundled Node for jsii before any test imports cdktf)
from environments.loader import ENV_DIR, environment_files, load_environments
from environments.schema import Environment

if TYPE_CHECKING:
    from tests.fakes.aws import AwsGaps

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def environments() -> dict[str, Environment]:
    return load_environments()


@pytest.fixture(scope="session")
def synth_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's environments, synthesized once for the whole session."""
    from infra.synth import synthesize

    out = tmp_path_factory.mktemp("synth") / "cdktf.out"
    synthesize(out, force=True)
    return out


@pytest.fixture
def env_dir(tmp_path: Path) -> Path:
    """A writable copy of the environment files."""
    target = tmp_path / "environments"
    target.mkdir()
    for f in [*environment_files(ENV_DIR), ENV_DIR / "facts.yaml"]:
        shutil.copy(f, target / f.name)
    return target


def read_env(env_dir: Path, name: str) -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((env_dir / f"{name}.yaml").read_text())


def write_env(env_dir: Path, name: str, data: dict) -> None:  # type: ignore[type-arg]
    (env_dir / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def tree_digest(path: Path) -> str:
    """A digest of every file name and content below ``path`` (to prove nothing changed)."""
    digest = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(f.relative_to(path)).encode())
        digest.update(f.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    from tests.servers import moto_server

    with moto_server() as url:
        yield url


@pytest.fixture(scope="session")
def aws_gaps_server() -> Iterator[tuple[AwsGaps, str]]:
    """The calls moto does not implement (tests/fakes/aws.py), for the session."""
    from tests.fakes.aws import AwsGaps, aws_gaps

    gaps = AwsGaps()
    with aws_gaps(gaps) as url:
        yield gaps, url


@pytest.fixture
def aws(moto_url: str, aws_gaps_server: tuple[AwsGaps, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """boto3 pointed at the session's moto server, emptied for each test; fake credentials only.
    CodeStar Connections, which moto lacks, goes to the gaps fake (emptied too)."""
    from tests.servers import moto_reset

    moto_reset(moto_url)
    aws_gaps_server[0].reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_CODESTAR_CONNECTIONS", aws_gaps_server[1])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    return moto_url
