"""The real cdktf CLI (pinned in package.json): `cdktf synth` of this app, and `cdktf deploy`
through the bundled Terraform engine on a stack that needs no downloaded provider."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.stacks.test_snapshots import normalized

CDKTF = ROOT / "node_modules" / ".bin" / "cdktf"
SHIM = ROOT / ".venv" / "bin" / "infra-terraform"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CDKTF.exists() or not SHIM.exists(), reason="needs `make install` (cdktf CLI and infra-terraform)"),
]


def _cli_env() -> dict[str, str]:
    return {
        **os.environ,
        "TERRAFORM_BINARY_NAME": str(SHIM),
        "CHECKPOINT_DISABLE": "1",
        "DISABLE_VERSION_CHECK": "1",
        "CI": "true",
        "FORCE_COLOR": "0",
    }


def test_cdktf_synth_writes_the_same_stacks(synth_out: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.out"
    result = subprocess.run(
        [str(CDKTF), "synth", "--output", str(out)], cwd=ROOT, env=_cli_env(), capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    stacks = sorted(p.name for p in (out / "stacks").iterdir())
    assert stacks == sorted(p.name for p in (synth_out / "stacks").iterdir())
    for stack in stacks:
        assert normalized(out / "stacks" / stack / "cdk.tf.json") == normalized(synth_out / "stacks" / stack / "cdk.tf.json")


def test_cdktf_deploy_runs_through_the_bundled_engine(tmp_path: Path) -> None:
    (tmp_path / "cdktf.json").write_text(json.dumps({"language": "python", "app": f"{sys.executable} app.py", "sendCrashReports": "false"}))
    (tmp_path / "app.py").write_text(
        textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        import stacks  # prepares the bindings and Node
        from cdktf import App, LocalBackend, TerraformOutput, TerraformResource, TerraformStack

        app = App()
        stack = TerraformStack(app, "staging")
        LocalBackend(stack, path="terraform.tfstate")
        model = TerraformResource(stack, "model", terraform_resource_type="terraform_data")
        model.add_override("input", "model-v1")
        TerraformOutput(stack, "model_output", value=model.get_string_attribute("output"))
        app.synth()
    """)
    )
    result = subprocess.run(
        [str(CDKTF), "deploy", "staging", "--auto-approve"],
        cwd=tmp_path,
        env=_cli_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    state = json.loads((tmp_path / "cdktf.out" / "stacks" / "staging" / "terraform.tfstate").read_text())
    assert state["outputs"]["model_output"]["value"] == "model-v1"
