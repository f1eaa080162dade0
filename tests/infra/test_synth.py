"""Synth: atomic replacement, the inputs-hash skip, and carrying Terraform's working files over."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from infra.synth import HASH_FILE, synthesize
from infra.synthesized.inputs import input_files, inputs_hash
from tests.conftest import ROOT, read_env, tree_digest, write_env


def test_failed_synth_leaves_previous_output_intact(synth_out: Path, tmp_path: Path) -> None:
    """A synth that fails after validation (here: jsii cannot start Node) changes nothing."""
    out = tmp_path / "cdktf.out"
    shutil.copytree(synth_out, out)
    before = tree_digest(out)
    env = {**os.environ, "JSII_NODE": "/bin/false", "CDKTF_OUTDIR": str(out)}
    result = subprocess.run([sys.executable, "main.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode != 0
    assert tree_digest(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["cdktf.out"], "no temporary synth directory may be left behind"


def test_unchanged_inputs_skip_synth_and_a_changed_file_does_not(synth_out: Path, tmp_path: Path, env_dir: Path) -> None:
    out = tmp_path / "cdktf.out"
    first = synthesize(out, env_dir=env_dir)
    assert not first.skipped
    assert (out / HASH_FILE).read_text().strip() == inputs_hash(env_dir)

    again = synthesize(out, env_dir=env_dir)
    assert again.skipped
    assert again.stacks == first.stacks

    data = read_env(env_dir, "dev")
    data["budget"].update(monthly_usd=1600, by_cloud={"aws": 1000, "gcp": 600})
    data["aws"]["endpoints"][0]["memory_mb"] = 1536
    write_env(env_dir, "dev", data)
    changed = synthesize(out, env_dir=env_dir)
    assert not changed.skipped
    dev = json.loads((out / "stacks" / "dev" / "cdk.tf.json").read_text())
    assert [f["memory_size"] for f in dev["resource"]["aws_lambda_function"].values()] == [1536]


def test_resynth_keeps_terraform_working_files(synth_out: Path, tmp_path: Path) -> None:
    out = tmp_path / "cdktf.out"
    shutil.copytree(synth_out, out)
    working = out / "stacks" / "staging" / ".terraform"
    working.mkdir()
    (working / "terraform.tfstate").write_text('{"backend": "s3"}')
    synthesize(out, force=True)
    assert (out / "stacks" / "staging" / ".terraform" / "terraform.tfstate").read_text() == '{"backend": "s3"}'
    assert not list(tmp_path.glob(".cdktf.out.*"))


def _local_imports(path: Path, root: Path) -> set[Path]:
    """Repository files that ``path`` imports (``app``, ``environments``, ``stacks``), transitively."""
    seen: set[Path] = set()
    todo = [path]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for node in ast.walk(ast.parse(current.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                if name.split(".")[0] not in ("app", "environments", "stacks"):
                    continue
                parts = name.split(".")
                for candidate in (root.joinpath(*parts).with_suffix(".py"), root.joinpath(*parts, "__init__.py")):
                    if candidate.exists():
                        todo.append(candidate)
                        if candidate.name != "__init__.py":
                            package_init = candidate.parent / "__init__.py"
                            if package_init.exists():
                                todo.append(package_init)
    return seen


def test_every_module_the_stacks_import_is_a_synth_input() -> None:
    """A change to any file the stacks read (app/k8s.py renders the serving workload) must re-synth."""
    inputs = {f.resolve() for f in input_files()}
    stack_files = sorted((ROOT / "stacks").rglob("*.py"))
    reached = set().union(*(_local_imports(f, ROOT) for f in stack_files))
    missing = sorted(str(p.relative_to(ROOT)) for p in reached if p.resolve() not in inputs)
    assert missing == []
    assert (ROOT / "app" / "k8s.py").resolve() in inputs
    assert (ROOT / "charts" / "manifests" / "templates" / "manifests.yaml").resolve() in inputs
