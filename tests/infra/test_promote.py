"""``infra promote``: digests that passed in the source move into the target file, comments kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from environments.loader import load_environments
from infra.cli.app import main
from infra.promote import PromotionRefused, promote

LAMBDA = "sha256:" + "1" * 64
SERVICE = "sha256:" + "2" * 64


def evidence(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "env": "dev",
        "commit": "c0ffee" * 6 + "abcd",
        "synth_hash": "e" * 64,
        "checked_at": "2026-11-26T10:00:00+00:00",
        "passed": True,
        "checks": [{"check": "lambda", "resource": "mlp-dev-predict", "ok": True, "detail": ""}],
        "images": [
            {
                "field": "aws.endpoints[0]",
                "repository": "mlp-dev-model-server",
                "reference": ":latest-dev-lambda",
                "digest": LAMBDA,
                "passed": True,
            },
            {"field": "serving", "repository": "mlp-dev-model-server", "reference": ":latest-dev", "digest": SERVICE, "passed": True},
        ],
    }
    data.update(over)
    return data


def test_promote_pins_digests_and_keeps_comments_and_order(env_dir: Path) -> None:
    path = env_dir / "staging.yaml"
    before = path.read_text()
    result = promote("dev", "staging", evidence(), env_dir)
    after = path.read_text()
    assert result.changed and [p.digest for p in result.pins] == [SERVICE, LAMBDA]
    staging = load_environments(env_dir)["staging"]
    assert staging.serving.image_digest == SERVICE and staging.serving.image_tag is None  # type: ignore[union-attr]
    assert staging.aws.endpoints[0].image_digest == LAMBDA  # type: ignore[union-attr]
    # the only lines that changed are the two pins; every comment survives, the comment of the pin too
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b]
    assert [(a, " ".join(b.split())) for a, b in changed] == [
        (
            "      image_tag: v1.0.0-lambda   # the Lambda variant of the image (app/Dockerfile --target lambda)",
            f"image_digest: {LAMBDA} # the Lambda variant of the image (app/Dockerfile --target lambda)",
        ),
        ("  image_tag: v1.0.0", f"image_digest: {SERVICE}"),
    ]
    assert [b[: len(b) - len(b.lstrip())] for _, b in changed] == ["      ", "  "]  # indentation kept
    assert result.branch == "promote/dev-to-staging-222222222222"
    assert "c0ffeec0ffee" in result.pull_request("staging", "develop") and f"`{LAMBDA}`" in result.pull_request("staging", "develop")
    again = promote("dev", "staging", evidence(), env_dir)
    assert not again.changed and path.read_text() == after


@pytest.mark.parametrize(
    ("over", "message"),
    [
        (
            {"passed": False, "checks": [{"check": "lambda", "resource": "mlp-dev-predict", "ok": False, "detail": "x"}]},
            "smoke run .* failed",
        ),
        (
            {"images": [{"field": "serving", "repository": "r", "reference": ":latest-dev", "digest": None, "passed": True}]},
            "tag without a digest",
        ),
        (
            {"images": [{"field": "serving", "repository": "r", "reference": ":latest-dev", "digest": SERVICE, "passed": False}]},
            "did not pass",
        ),
        ({"env": "staging"}, "not of 'dev'"),
    ],
)
def test_promote_refuses_without_evidence_and_changes_nothing(env_dir: Path, over: dict[str, Any], message: str) -> None:
    before = (env_dir / "staging.yaml").read_text()
    with pytest.raises(PromotionRefused, match=message):
        promote("dev", "staging", evidence(**over), env_dir)
    assert (env_dir / "staging.yaml").read_text() == before


def test_promote_follows_the_promotion_path_only(env_dir: Path) -> None:
    with pytest.raises(Exception, match="does not promote to production"):
        promote("dev", "production", evidence(), env_dir)


def test_promote_cli(env_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = tmp_path / "smoke-dev.json"
    record.write_text(json.dumps(evidence()))
    before = (env_dir / "staging.yaml").read_text()
    assert main(["promote", "--from", "dev", "--to", "staging", "--evidence", str(record), "--env-dir", str(env_dir), "--dry-run"]) == 0
    assert (env_dir / "staging.yaml").read_text() == before
    assert main(["promote", "--from", "dev", "--to", "staging", "--evidence", str(record), "--env-dir", str(env_dir)]) == 0
    printed = capsys.readouterr().out
    assert "git switch -c promote/dev-to-staging-" in printed and "open a pull request into staging" in printed
    assert (env_dir / "staging.yaml").read_text() != before
    record.write_text("{}")
    assert main(["promote", "--from", "dev", "--to", "staging", "--evidence", str(record), "--env-dir", str(env_dir)]) == 2


def test_promotion_check_says_whether_the_target_gets_exactly_what_the_source_runs(env_dir: Path) -> None:
    from infra.promote import promotion_check

    envs = load_environments(env_dir)
    head = evidence()["commit"]
    exact, text = promotion_check(evidence(), head, envs, "staging")
    assert not exact and "pins tag `v1.0.0`, not a digest" in text  # staging still pins tags
    promote("dev", "staging", evidence(), env_dir)
    envs = load_environments(env_dir)
    exact, text = promotion_check(evidence(), head, envs, "staging")
    assert exact and "receives exactly what dev runs" in text
    exact, text = promotion_check(evidence(), "f" * 40, envs, "staging")
    assert not exact and "carries commits dev does not run" in text


def test_promote_without_evidence_reads_the_source_branchs_last_deploy(
    env_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No --evidence: the record comes from dev's newest successful deploy.yml push run on develop
    (its artifact, checked by digest), not from an artifact a pull request could name alike."""
    from tests.fakes.github import Artifact, GitHubState, WorkflowRun, fake_github

    state = GitHubState(repository="acme-ml/ml-platform")
    good, forged = json.dumps(evidence()).encode(), json.dumps(evidence(images=[])).encode()
    state.runs += [
        WorkflowRun(id=1, workflow="deploy.yml", event="push", head_sha="a" * 40, head_branch="develop", created_at="2026-11-30T10:00:00Z"),
        WorkflowRun(
            id=2, workflow="review.yml", event="pull_request", head_sha="b" * 40, head_branch="x", created_at="2026-11-30T11:00:00Z"
        ),
    ]
    state.artifacts += [
        Artifact(id=10, run_id=1, name="deploy-dev", files={"smoke-dev.json": good}),
        Artifact(id=20, run_id=2, name="deploy-dev", files={"smoke-dev.json": forged}),
    ]
    with fake_github(state) as url:
        monkeypatch.setenv("GITHUB_API_URL", url)
        monkeypatch.setenv("GITHUB_TOKEN", state.token)
        monkeypatch.setenv("GITHUB_REPOSITORY", "acme-ml/ml-platform")
        assert main(["promote", "--from", "dev", "--to", "staging", "--env-dir", str(env_dir), "--dry-run", "--format", "json"]) == 0
    pins = json.loads(capsys.readouterr().out)["pins"]
    assert {p["digest"] for p in pins} == {LAMBDA, SERVICE}  # from run 1's record
