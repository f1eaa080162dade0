"""The workflows themselves, parsed: what runs on which event, with which permissions, pinned how;
and the matrix the deploy workflow computes for each branch equals `infra ci-matrix`."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from environments.loader import load_environments
from infra import ci_matrix
from tests.conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def load(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as True
    return doc


def all_workflows() -> dict[str, dict[str, Any]]:
    return {p.name: load(p.name) for p in sorted(WORKFLOWS.glob("*.yml"))}


def _steps_text(job: dict[str, Any]) -> str:
    return json.dumps(job.get("steps", []))


def test_expected_workflows_exist() -> None:
    assert set(all_workflows()) == {"ci.yml", "review.yml", "deploy.yml", "drift.yml", "train.yml"}


def test_every_action_is_pinned_to_a_full_sha_with_its_tag() -> None:
    for name in WORKFLOWS.glob("*.yml"):
        for lineno, line in enumerate(name.read_text().splitlines(), 1):
            m = re.search(r"uses:\s*(\S+)(.*)$", line)
            if not m:
                continue
            assert PINNED.match(m.group(1)), f"{name.name}:{lineno}: {m.group(1)} is not pinned to a commit SHA"
            assert re.search(r"#\s*v\d", m.group(2)), f"{name.name}:{lineno}: say which tag the SHA is (# vX.Y.Z)"


def test_top_level_permissions_are_empty_or_read_only_and_jobs_take_only_what_they_use() -> None:
    # what each permission is for: a job holding one must contain what uses it
    uses = {
        "id-token": ("configure-aws-credentials", "google-github-actions/auth"),
        "pull-requests": ("<!-- infra-review -->", "commits/$SHA/pulls", "gh pr create"),  # comment; merged PR; promotion PR
        "security-events": ("upload-sarif",),
        "issues": ("rest.issues.create(", "rest.issues.update("),
        "actions": ("actions/artifacts", "download-artifact"),
    }
    for name, wf in all_workflows().items():
        top = wf.get("permissions")
        assert top in ({}, {"contents": "read"}), f"{name}: top-level permissions {top}"
        for job_name, job in wf["jobs"].items():
            perms = job.get("permissions", top)
            text = _steps_text(job)
            for perm, level in perms.items():
                if perm == "contents":
                    assert level == "read" or "git push" in text, f"{name}/{job_name}: contents {level} without pushing"
                    continue
                assert any(u in text for u in uses[perm]), f"{name}/{job_name} holds {perm}: {level} but nothing uses it"
            # the reverse: whatever needs a permission has it
            for perm, markers in uses.items():
                if perm == "actions":
                    continue
                if any(m in text for m in markers):
                    assert perm in perms, f"{name}/{job_name} uses {perm} without the permission"


def test_no_static_cloud_keys_anywhere() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        text = path.read_text()
        assert not re.search(r"AWS_(SECRET_)?ACCESS_KEY|credentials_json|GOOGLE_APPLICATION_CREDENTIALS|secrets\.", text), path.name


def _deploying_jobs(wf: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: j for n, j in wf["jobs"].items() if "infra deploy" in _steps_text(j) or "--push" in _steps_text(j)}


def test_no_job_that_deploys_runs_on_pull_requests() -> None:
    for name, wf in all_workflows().items():
        jobs = _deploying_jobs(wf)
        if not jobs:
            continue
        assert "pull_request" not in wf["on"] and "pull_request_target" not in wf["on"], f"{name} deploys and runs on pull requests"
        for job in jobs.values():
            assert "github.event_name != 'pull_request'" in job["if"]  # and says so, should the trigger change
    review = all_workflows()["review.yml"]
    assert not _deploying_jobs(review) and set(review["on"]) == {"pull_request"}


def _expand(value: Any, ctx: dict[str, Any]) -> Any:
    """Evaluate the `${{ matrix.x }}` / `${{ x.y }}` expressions this test needs (dotted lookups)."""
    if isinstance(value, dict):
        return {k: _expand(v, ctx) for k, v in value.items()}
    if isinstance(value, str):

        def lookup(m: re.Match[str]) -> str:
            node: Any = ctx
            for part in m.group(1).split("."):
                node = node[part]
            return str(node)

        return EXPR.sub(lookup, value)
    return value


def _run_matrix_job(wf: dict[str, Any], github: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """Run the `matrix` job's last step as the runner would (its `run:` in bash, env expanded,
    $GITHUB_OUTPUT a file), then resolve the job's outputs from the step's outputs."""
    job = wf["jobs"]["matrix"]
    step = job["steps"][-1]
    out = tmp_path / "github_output"
    out.write_text("")
    env = {k: _expand(v, {"github": github}) for k, v in step.get("env", {}).items()}
    bin_dir = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"
    proc = subprocess.run(
        ["bash", "-ec", step["run"]],
        cwd=ROOT,
        env={**os.environ, **env, "GITHUB_OUTPUT": str(out), "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    outputs = dict(line.split("=", 1) for line in out.read_text().splitlines() if line)
    ctx = {"steps": {step["id"]: {"outputs": outputs}}}
    return {k: _expand(v, ctx) for k, v in job["outputs"].items()}


@pytest.mark.parametrize("branch", ["develop", "staging", "main", "feature/x"])
def test_deploy_matrix_for_each_branch_equals_ci_matrix(branch: str, tmp_path: Path) -> None:
    wf = load("deploy.yml")
    outputs = _run_matrix_job(wf, {"ref_name": branch, "event": {"before": "0" * 40}}, tmp_path)
    want = ci_matrix.matrix(branch, None, ROOT / "environments")
    assert json.loads(outputs["matrix"]) == want["matrix"]
    assert json.loads(outputs["envs"]) == want["envs"]
    envs = load_environments()
    assert json.loads(outputs["envs"]) == [e.name for e in envs.values() if e.branch == branch]
    assert outputs["infra"] == ("true" if want["envs"] else "false")


def test_each_environment_deploys_in_its_github_environment_with_its_own_concurrency_group() -> None:
    wf = load("deploy.yml")
    job = wf["jobs"]["deploy"]
    assert job["strategy"]["matrix"] == "${{ fromJSON(needs.matrix.outputs.matrix) }}"
    groups = {}
    for env in load_environments().values():
        row = ci_matrix.entry(env, load_environments())
        expanded = _expand({"environment": job["environment"], "concurrency": job["concurrency"]}, {"matrix": row})
        assert expanded["environment"]["name"] == env.name  # production's job names production (its reviewers)
        groups[env.name] = expanded["concurrency"]["group"]
        assert job["concurrency"]["cancel-in-progress"] is False
    assert len(set(groups.values())) == len(groups) and groups["production"] == "deploy-production"
    assert load_environments()["production"].requires_approval


def test_oidc_roles_come_from_the_matrix_and_match_what_bootstrap_creates() -> None:
    for name, wf in all_workflows().items():
        for job_name, job in wf["jobs"].items():
            for step in job.get("steps", []):
                if "configure-aws-credentials" in step.get("uses", ""):
                    role = step["with"]["role-to-assume"]
                    purpose = {"deploy": "deploy", "image": "deploy", "train": "training"}.get(job_name, "plan")
                    assert role == f"${{{{ matrix.aws_{purpose}_role }}}}", f"{name}/{job_name}: {role}"
    env = load_environments()["staging"]
    assert ci_matrix.entry(env, load_environments())["aws_deploy_role"] == "arn:aws:iam::222222222222:role/mlp-staging-github-deploy"


def test_every_matrix_field_a_workflow_reads_is_one_ci_matrix_writes() -> None:
    row = ci_matrix.entry(load_environments()["staging"], load_environments())
    for path in WORKFLOWS.glob("*.yml"):
        for ref in re.findall(r"(?<![.\w])matrix\.([a-z_]+(?:\.[a-z_]+)?)", path.read_text()):
            key, _, sub = ref.partition(".")
            if key == "outputs":  # needs.matrix.outputs.*: the job's outputs, not a row
                continue
            assert key in row, f"{path.name} reads matrix.{ref}, which ci-matrix does not write"
            if sub:
                assert sub in row[key], f"{path.name} reads matrix.{ref}"


def test_review_posts_one_sticky_comment_and_uploads_the_report() -> None:
    job = load("review.yml")["jobs"]["review"]
    text = _steps_text(job)
    assert "<!-- infra-review -->" in text and "updateComment" in text and "createComment" in text
    assert "infra review --base" in text and "GITHUB_STEP_SUMMARY" in text and "reports/review.md" in text
    upload = next(s for s in job["steps"] if "upload-artifact" in s.get("uses", "") and "review-pr" in s["with"]["name"])
    assert upload["with"]["path"] == "reports/"
    # the deploy job downloads exactly that artifact name
    assert "review-pr-$pr" in _steps_text(load("deploy.yml")["jobs"]["deploy"])


def test_drift_runs_nightly_and_keeps_one_issue_per_environment() -> None:
    wf = load("drift.yml")
    assert "schedule" in wf["on"] and "workflow_dispatch" in wf["on"]
    assert "infra drift" in _steps_text(wf["jobs"]["drift"])
    assert "Drift: ${env}" in _steps_text(wf["jobs"]["issues"])
    assert wf["jobs"]["issues"]["permissions"] == {"issues": "write"}


def test_continuous_training_registers_in_dev_and_opens_the_promotion_pull_request(tmp_path: Path) -> None:
    wf = load("train.yml")
    assert "schedule" in wf["on"] and "workflow_dispatch" in wf["on"]
    outputs = _run_matrix_job(wf, {}, tmp_path)
    assert json.loads(outputs["envs"]) == ["dev"]  # the environment of the develop branch, from its file
    train = _steps_text(wf["jobs"]["train"])
    assert "python -m app.train" in train and "infra model register" in train and "infra model candidate" in train
    pr = wf["jobs"]["pull-request"]
    assert pr["if"] == "needs.train.outputs.beats == 'true'"
    assert "infra model pin" in _steps_text(pr) and "gh pr create" in _steps_text(pr)
    assert "id-token" not in pr["permissions"]  # the job that writes to the repository holds no cloud credentials


def test_deploy_moves_the_pinned_model_after_applying() -> None:
    steps = [s.get("name", "") + json.dumps(s) for s in load("deploy.yml")["jobs"]["deploy"]["steps"]]
    apply = next(i for i, s in enumerate(steps) if "infra deploy" in s)
    model = next(i for i, s in enumerate(steps) if "infra model promote" in s)
    smoke = next(i for i, s in enumerate(steps) if "infra smoke" in s)
    assert apply < model < smoke


def test_dependabot_covers_actions_pip_and_npm() -> None:
    doc = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    assert {u["package-ecosystem"] for u in doc["updates"]} >= {"github-actions", "pip", "npm"}


def test_actionlint_passes() -> None:
    proc = subprocess.run([str(ROOT / ".venv" / "bin" / "actionlint")], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
