"""The bundled Terraform engine: the real loader over every stack, and the executable the cdktf
CLI calls, on a configuration that needs no downloaded provider."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from infra import engine
from infra.errors import TerraformError
from infra.synthesized.reader import list_stacks
from tests.conftest import ROOT

SHIM = ROOT / ".venv" / "bin" / "infra-terraform"


def test_every_synthesized_stack_loads_with_terraforms_loader(synth_out: Path) -> None:
    for stack in list_stacks(synth_out):
        stack_dir = synth_out / "stacks" / stack
        module = engine.load_config(stack_dir)
        declared = json.loads((stack_dir / "cdk.tf.json").read_text())["resource"]
        assert len(module["ManagedResources"]) == sum(len(v) for v in declared.values()), stack
        assert module["Backend"] is not None, stack


def test_loader_rejects_a_broken_configuration(tmp_path: Path) -> None:
    (tmp_path / "cdk.tf.json").write_text('{"resource": {"aws_vpc": {"x": {"count": 1, "for_each": {"a": 1}}}}}')
    with pytest.raises(TerraformError, match="count"):
        engine.load_config(tmp_path)


def test_engine_version() -> None:
    assert engine.version().startswith("1.")


def _builtin_only_config(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "main.tf.json").write_text(
        json.dumps(
            {
                "terraform": {"backend": {"local": {"path": "terraform.tfstate"}}},
                "resource": {"terraform_data": {"model": {"input": "v1"}}},
                "output": {"model": {"value": "${terraform_data.model.output}"}},
            }
        )
    )


@pytest.mark.skipif(shutil.which(str(SHIM)) is None, reason="the infra-terraform executable is installed by `make install`")
def test_shim_inits_plans_and_applies_offline(tmp_path: Path) -> None:
    work = tmp_path / "stack"
    _builtin_only_config(work)
    run = lambda *args: subprocess.run([str(SHIM), *args], capture_output=True, text=True, timeout=120, check=False)  # noqa: E731
    assert run(f"-chdir={work}", "init", "-input=false", "-no-color").returncode == 0
    plan = run(f"-chdir={work}", "plan", "-input=false", "-no-color", "-detailed-exitcode")
    assert plan.returncode == 2, plan.stderr  # 2: changes present
    assert "terraform_data.model will be created" in plan.stdout
    assert run(f"-chdir={work}", "apply", "-auto-approve", "-input=false", "-no-color").returncode == 0
    state = json.loads((work / "terraform.tfstate").read_text())
    assert state["outputs"]["model"]["value"] == "v1"
    version = run("-version")
    assert version.returncode == 0 and version.stdout.startswith("Terraform v1.")
