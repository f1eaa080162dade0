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
        "id-token": ("configure-aws-credentials", "google-github-actions/auth", "actions/attest@"),
        "pull-requests": ("<!-- infra-review -->", "infra deploy plan", "gh pr create"),  # comment; merged PR; promotion PR
        "security-events": ("upload-sarif",),
        "issues": ("rest.issues.create(", "rest.issues.update("),
        "actions": ("infra deploy plan", "download-artifact", "promotion-check"),
        "attestations": ("actions/attest@",),
    }
    for name, wf in all_workflows().items():
        top = wf.get("permissions")
        assert top in ({}, {"contents": "read"}), f"{name}: top-level permissions {top}"
        for job_name, job in wf["jobs"].items():
            perms = job.get("permissions", top)
            text = _steps_text(job)
            for perm, level in perms.items():
                if perm == "contents":
                    assert level == "read", f"{name}/{job_name}: contents {level} (the promotion pull request uses an App token)"
                    continue
                assert any(u in text for u in uses[perm]), f"{name}/{job_name} holds {perm}: {level} but nothing uses it"
            # the reverse: whatever needs a permission has it
            for perm in ("security-events", "issues", "attestations"):
                if any(m in text for m in uses[perm]):
                    assert perm in perms, f"{name}/{job_name} uses {perm} without the permission"


def test_no_static_cloud_keys_and_secrets_only_in_an_environment() -> None:
    for name, wf in all_workflows().items():
        text = (WORKFLOWS / name).read_text()
        assert not re.search(r"AWS_(SECRET_)?ACCESS_KEY|credentials_json|GOOGLE_APPLICATION_CREDENTIALS", text), name
        for job_name, job in wf["jobs"].items():
            if "secrets." in _steps_text(job):
                assert job.get("environment"), f"{name}/{job_name} reads a secret outside a GitHub Environment"
    train = load("train.yml")["jobs"]["pull-request"]
    assert train["environment"]["name"] == "model-promotion" and "PROMOTION_APP_PRIVATE_KEY" in _steps_text(train)


def test_no_checkout_leaves_its_token_behind_and_no_credential_job_restores_a_cache() -> None:
    for name, wf in all_workflows().items():
        for job_name, job in wf["jobs"].items():
            for step in job.get("steps", []):
                if "actions/checkout" in step.get("uses", ""):
                    assert step.get("with", {}).get("persist-credentials") is False, f"{name}/{job_name}: persist-credentials"
                if "setup-" in step.get("uses", "") and "id-token" in (job.get("permissions") or {}):
                    assert "cache" not in step.get("with", {}), f"{name}/{job_name}: a cache restored into a job with credentials"


CREDENTIALS = ("configure-aws-credentials", "google-github-actions/auth", "create-github-app-token")
INSTALLS = (".github/scripts/install-locked", "make install", "pip install")


def test_credentials_are_obtained_only_after_everything_is_installed() -> None:
    for name, wf in all_workflows().items():
        for job_name, job in wf["jobs"].items():
            steps = [json.dumps(s) for s in job.get("steps", [])]
            creds = [i for i, s in enumerate(steps) if any(c in s for c in CREDENTIALS)]
            installs = [i for i, s in enumerate(steps) if any(c in s for c in INSTALLS)]
            if creds and installs:
                assert max(installs) < min(creds), f"{name}/{job_name}: a package is installed after a credential exists"


def test_jobs_that_deploy_plan_drift_or_train_install_only_hash_checked_packages() -> None:
    for name in ("deploy.yml", "drift.yml", "train.yml"):
        for job_name, job in load(name)["jobs"].items():
            if job_name == "issues":
                continue
            text = _steps_text(job)
            assert ".github/scripts/install-locked" in text, f"{name}/{job_name}"
            assert "make install" not in text and "pip install" not in text and "npm " not in text, f"{name}/{job_name}"
    assert "install-locked requirements-train.txt" in _steps_text(load("train.yml")["jobs"]["train"])  # the app's packages too
    script = (ROOT / ".github" / "scripts" / "install-locked").read_text()
    assert '--require-hashes --no-deps -r "$requirements"' in script and "--no-deps --no-build-isolation --no-index -e ." in script
    assert 'requirements="${1:-requirements-deploy.txt}"' in script


def _requirements(text: str) -> dict[str, tuple[str, list[str]]]:
    """``{name: (version, hashes)}`` of a ``--generate-hashes`` requirements file."""
    out: dict[str, tuple[str, list[str]]] = {}
    current = ""
    for line in text.splitlines():
        if m := re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^\s;\\]+)", line):
            current = _norm(m.group(1))
            out[current] = (m.group(3), [])
        elif (m := re.search(r"--hash=sha256:([0-9a-f]{64})", line)) and current:
            out[current][1].append(m.group(1))
    return out


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.parametrize("file", ["requirements-deploy.txt", "requirements-train.txt"])
def test_the_locked_requirements_pin_every_package_with_hashes_and_match_pyproject(file: str) -> None:
    import tomllib

    text = (ROOT / file).read_text()
    pinned = _requirements(text)
    assert len(pinned) > 50 and "setuptools" in pinned  # setuptools: the editable install's build backend
    assert all(hashes for _, hashes in pinned.values()), [n for n, (_, h) in pinned.items() if not h]
    deps = list(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    if file == "requirements-train.txt":  # the app's, for training
        deps += [line.split("#")[0].strip() for line in (ROOT / "app" / "requirements.txt").read_text().splitlines()]
    for dep in filter(None, deps):
        name, _, version = dep.partition("==")
        found = pinned.get(_norm(re.sub(r"\[.*\]", "", name)))
        assert found and found[0] == version, f"{dep}: {file} has {found}; run `make requirements-deploy`"
    # the reader itself: a pin without a hash is seen as one
    assert _requirements("boto3==1.0\nrequests==2.0 \\\n    --hash=sha256:" + "a" * 64 + "\n") == {
        "boto3": ("1.0", []),
        "requests": ("2.0", ["a" * 64]),
    }


def _deploying_jobs(wf: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: j for n, j in wf["jobs"].items() if "infra deploy apply" in _steps_text(j) or "--push" in _steps_text(j)}


def test_only_a_push_to_an_environment_branch_deploys() -> None:
    for name, wf in all_workflows().items():
        if _deploying_jobs(wf):
            assert set(wf["on"]) == {"push"}, f"{name} deploys on {set(wf['on'])}"
    deploy = load("deploy.yml")
    assert sorted(deploy["on"]["push"]["branches"]) == sorted({e.branch for e in load_environments().values()})
    review = load("review.yml")
    assert not _deploying_jobs(review) and set(review["on"]) == {"pull_request"}
    for name, wf in all_workflows().items():
        assert "pull_request_target" not in wf["on"] and "workflow_run" not in wf["on"], name


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
    envs = load_environments()
    rows = json.loads(outputs["matrix"]).get("include", [])
    assert [r["env"] for r in rows] == [e.name for e in envs.values() if e.branch == branch]
    assert outputs["infra"] == ("true" if want["envs"] else "false")


def test_each_environment_applies_in_its_github_environment_with_its_own_concurrency_group() -> None:
    wf = load("deploy.yml")
    envs = load_environments()
    for job_name in ("apply", "workloads"):
        job = wf["jobs"][job_name]
        assert job["strategy"]["matrix"] == "${{ fromJSON(needs.matrix.outputs.matrix) }}"
        assert job["concurrency"]["cancel-in-progress"] is False
        groups = {}
        for env in envs.values():
            row = ci_matrix.entry(env, envs)
            expanded = _expand({"environment": job["environment"], "concurrency": job["concurrency"]}, {"matrix": row})
            assert expanded["environment"]["name"] == env.name  # production's jobs name production (its reviewers)
            groups[env.name] = expanded["concurrency"]["group"]
        assert len(set(groups.values())) == len(groups), job_name
    assert wf["jobs"]["apply"]["concurrency"]["group"] == "deploy-${{ matrix.env }}"
    # the plan job runs in no environment: it holds only the read-only plan role
    assert "environment" not in wf["jobs"]["plan"]
    assert envs["production"].requires_approval


def test_the_pull_request_plan_runs_in_the_plan_environment_the_plan_role_trusts() -> None:
    job = load("review.yml")["jobs"]["review"]
    assert job["environment"]["name"] == "${{ matrix.plan_environment }}"
    envs = load_environments()
    for env in envs.values():
        assert ci_matrix.entry(env, envs)["plan_environment"] == f"{env.name}-plan"


OIDC_PURPOSE = {
    ("deploy.yml", "plan"): "plan",
    ("deploy.yml", "apply"): "deploy",
    ("deploy.yml", "workloads"): "deploy",
    ("review.yml", "review"): "plan",
    ("drift.yml", "drift"): "plan",
    ("train.yml", "train"): "training",
}


def test_oidc_roles_come_from_the_matrix_and_match_what_bootstrap_creates() -> None:
    seen = set()
    for name, wf in all_workflows().items():
        for job_name, job in wf["jobs"].items():
            for step in job.get("steps", []):
                uses = step.get("uses", "")
                if "configure-aws-credentials" in uses or "google-github-actions/auth" in uses:
                    purpose = OIDC_PURPOSE.get((name, job_name))
                    assert purpose, f"{name}/{job_name} takes cloud credentials; say which identity in OIDC_PURPOSE"
                    seen.add((name, job_name))
                    if "configure-aws-credentials" in uses:
                        assert step["with"]["role-to-assume"] == f"${{{{ matrix.aws_{purpose}_role }}}}", f"{name}/{job_name}"
                    elif purpose != "training":
                        want = f"${{{{ matrix.gcp_{purpose}_service_account }}}}"
                        assert step["with"]["service_account"] == want, f"{name}/{job_name}"
                    assert job["permissions"].get("id-token") == "write"
    assert seen == set(OIDC_PURPOSE)
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


def test_review_uploads_only_the_report_and_the_deploy_reads_it_through_the_merged_pull_request() -> None:
    wf = load("review.yml")
    job = wf["jobs"]["review"]
    text = _steps_text(job)
    assert "infra review --base" in text
    upload = next(s for s in job["steps"] if "upload-artifact" in s.get("uses", ""))
    assert upload["with"]["name"] == "review-pr-${{ github.event.pull_request.number }}"
    assert upload["with"]["path"].startswith("review-artifact/")  # never the plan files (they hold values)
    report = _steps_text(wf["jobs"]["report"])
    assert "<!-- infra-review -->" in report and "updateComment" in report and "createComment" in report
    # the deploy finds the review through GitHub (the merged pull request, its run, its artifact by
    # digest: infra/deploy/provenance.py), never by a name a pull request could upload
    deploy = load("deploy.yml")
    assert "infra deploy plan" in _steps_text(deploy["jobs"]["plan"])
    for name in ("deploy.yml", "drift.yml", "train.yml"):
        assert "review-pr" not in (WORKFLOWS / name).read_text(), name
    assert "actions/artifacts?name" not in "".join(p.read_text() for p in WORKFLOWS.glob("*.yml"))


def test_the_apply_uses_the_record_the_plan_job_uploaded_by_id_and_digest() -> None:
    deploy = load("deploy.yml")
    assert deploy["jobs"]["plan"]["outputs"]["record-digest"] == "${{ steps.upload.outputs.artifact-digest }}"
    for job_name in ("apply", "workloads"):
        download = next(s for s in deploy["jobs"][job_name]["steps"] if "download-artifact" in s.get("uses", ""))
        assert download["with"]["artifact-ids"] == "${{ needs.plan.outputs.record-id }}"
        assert download["with"]["digest-mismatch"] == "error"
        assert "--planned" in _steps_text(deploy["jobs"][job_name])


def test_drift_runs_nightly_and_keeps_one_issue_per_environment() -> None:
    wf = load("drift.yml")
    assert "schedule" in wf["on"] and "workflow_dispatch" in wf["on"]
    assert "infra drift" in _steps_text(wf["jobs"]["drift"])
    assert "Drift: ${env}" in _steps_text(wf["jobs"]["issues"])
    assert wf["jobs"]["issues"]["permissions"] == {"issues": "write"}
    assert "id-token" not in wf["jobs"]["issues"]["permissions"]


def test_continuous_training_registers_in_dev_and_opens_the_promotion_pull_request(tmp_path: Path) -> None:
    wf = load("train.yml")
    assert "schedule" in wf["on"] and "workflow_dispatch" in wf["on"]
    outputs = _run_matrix_job(wf, {}, tmp_path)
    assert json.loads(outputs["envs"]) == ["dev"]  # the environment of the develop branch, from its file
    train = wf["jobs"]["train"]
    assert "environment" not in train  # the training role trusts the default branch's train.yml only
    assert "default_branch" in train["if"] and "github.event_name == 'schedule'" in train["if"]
    text = _steps_text(train)
    assert "python -m app.train" in text and "infra model register" in text and "infra model candidate" in text
    pr = wf["jobs"]["pull-request"]
    assert pr["if"] == "needs.train.outputs.beats == 'true'"
    assert "infra model pin" in _steps_text(pr) and "gh pr create" in _steps_text(pr)
    # the job that writes to the repository holds no cloud credentials and no workflow token: a
    # GitHub App's token, from the model-promotion environment's secrets, so that the pull
    # request it opens runs the review (GITHUB_TOKEN's do not trigger workflows)
    assert pr["permissions"] == {"contents": "read"}  # the checkout of a private repository
    assert pr["environment"]["name"] == "model-promotion"
    assert "create-github-app-token" in _steps_text(pr)


def test_the_apply_job_orders_registries_images_checks_environment_model() -> None:
    steps = [s.get("name", "") + json.dumps(s) for s in load("deploy.yml")["jobs"]["apply"]["steps"]]

    def at(needle: str) -> int:
        return next(i for i, s in enumerate(steps) if needle in s)

    registries = at('--stack \\"$STACK\\"')
    assert registries < at("infra images") < at("attestation verify") < at("--images --no-github")
    assert at("--images --no-github") < at('--stack \\"$ENV_NAME\\"') < at("infra model promote")
    workloads = [json.dumps(s) for s in load("deploy.yml")["jobs"]["workloads"]["steps"]]
    assert next(i for i, s in enumerate(workloads) if "infra deploy apply" in s) < next(
        i for i, s in enumerate(workloads) if "infra smoke" in s
    )


def test_the_workloads_job_runs_inside_the_vpc_when_the_environment_has_an_eks_cluster() -> None:
    job = load("deploy.yml")["jobs"]["workloads"]
    envs = load_environments()
    for env in envs.values():
        row = ci_matrix.entry(env, envs)
        if "aws" in env.cluster_clouds() and env.ci:
            assert row["runner"] == f"codebuild-{env.ci_runner_name}"
        else:
            assert row["runner"] == ""
    assert "matrix.runner" in job["runs-on"] and "github.run_id" in job["runs-on"]  # CodeBuild's label form
    assert load("drift.yml")["jobs"]["drift"]["runs-on"] == job["runs-on"]


def test_dependabot_covers_actions_pip_and_npm_after_a_cooldown() -> None:
    doc = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    assert {u["package-ecosystem"] for u in doc["updates"]} >= {"github-actions", "pip", "npm"}
    for update in doc["updates"]:  # a release gets a week to be found out before it is proposed
        assert update["cooldown"]["default-days"] >= 7, update["package-ecosystem"]


def test_codeowners_own_everything_that_changes_what_is_deployed_or_who_may_deploy() -> None:
    owners = (ROOT / ".github" / "CODEOWNERS").read_text()
    paths = {line.split()[0] for line in owners.splitlines() if line.strip() and not line.startswith("#")}
    assert {"/.github/", "/stacks/", "/infra/", "/environments/", "/requirements-deploy.txt"} <= paths


def test_actionlint_passes() -> None:
    proc = subprocess.run([str(ROOT / ".venv" / "bin" / "actionlint")], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_zizmor_finds_nothing() -> None:
    """zizmor's offline audits (template injection, excessive permissions, credential persistence,
    cache poisoning, unpinned uses, dangerous triggers, ...)."""
    proc = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "zizmor"), "--offline", "--quiet", "--format", "plain", ".github/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_credentialed_job_checks_the_provider_locks_before_its_first_credential() -> None:
    """`init -lockfile=readonly` with the committed locks (infra/providers.py): a job refuses a
    missing or stale lock before it holds a cloud identity."""
    for (name, job_name), _ in OIDC_PURPOSE.items():
        if job_name == "train":  # trains and registers; runs no Terraform
            continue
        steps = [json.dumps(s) for s in load(name)["jobs"][job_name]["steps"]]
        check = next((i for i, s in enumerate(steps) if "infra providers check" in s), None)
        first_credential = next(i for i, s in enumerate(steps) if "configure-aws-credentials" in s or "google-github-actions/auth" in s)
        assert check is not None and check < first_credential, f"{name}/{job_name}"


def test_image_steps_copy_whole_indexes_attest_only_builds_and_never_repush_a_tag() -> None:
    apply = load("deploy.yml")["jobs"]["apply"]
    images = next(s for s in apply["steps"] if s.get("id") == "images")["run"]
    assert "skopeo copy --all --preserve-digests" in images  # an index keeps its digest only whole
    assert 'skopeo inspect --no-tags "docker://$image"' in images and "immutable" in images
    attest = next(s for s in apply["steps"] if "actions/attest" in s.get("uses", ""))
    assert "steps.images.outputs.built == 'true'" in attest["if"]  # `: > built.txt` always makes the file


def test_every_workflow_runs_bash_with_pipefail_and_re_runs_can_upload_again() -> None:
    for name, wf in all_workflows().items():
        assert wf.get("defaults", {}).get("run", {}).get("shell") == "bash", name  # -eo pipefail
        for job_name, job in wf["jobs"].items():
            for step in job.get("steps", []):
                if "actions/upload-artifact" in step.get("uses", ""):
                    assert step["with"].get("overwrite") is True, f"{name}/{job_name}"
