"""What decides the synthesized output: the one list of synth inputs, read by the synth (its skip
hash), by ``infra ci-matrix`` (which pushes need the infrastructure jobs) and by the base cache of
``infra review`` (the inputs of a git ref)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import subprocess
from pathlib import Path

from environments.loader import ENV_DIR, environment_files
from infra.errors import InfraError
from infra.git import ROOT, git

INPUT_DIRS = ("environments", "stacks")  # every *.py below them
# modules outside those folders that the stacks import (the serving workload), and the chart the
# workloads stack ships as an asset; a test compares this list with what the stacks import
INPUT_FILES = ("cdktf.json", "main.py", "app/__init__.py", "app/k8s.py", "app/layout.py")
INPUT_TREES = ("charts",)  # every file below them
PACKAGES = ("cdktf", "constructs", "jsii", "cdktf-cdktf-provider-aws", "cdktf-cdktf-provider-google", "cdktf-cdktf-provider-helm")
# the tooling that turns those inputs into cdktf.out (a ref's synth runs its own copy of it)
SYNTH_CODE = ("infra/synth.py", "infra/synthesized")


def input_files(env_dir: Path = ENV_DIR) -> list[Path]:
    """Every file whose content decides the synthesized output."""
    files = [*environment_files(env_dir), env_dir / "facts.yaml", *(ROOT / f for f in INPUT_FILES)]
    for folder in INPUT_DIRS:
        files += sorted((ROOT / folder).rglob("*.py"))
    for tree in INPUT_TREES:
        files += sorted(p for p in (ROOT / tree).rglob("*") if p.is_file())
    return files


def _packages(digest: hashlib._Hash) -> None:
    for pkg in PACKAGES:
        try:
            digest.update(f"{pkg}=={importlib.metadata.version(pkg)}".encode())
        except importlib.metadata.PackageNotFoundError:
            digest.update(f"{pkg} missing".encode())


def inputs_hash(env_dir: Path = ENV_DIR) -> str:
    """A digest of everything that decides the synthesized output."""
    digest = hashlib.sha256()
    for f in input_files(env_dir):
        if f.exists():
            digest.update(str(f.relative_to(ROOT) if f.is_relative_to(ROOT) else f).encode())
            digest.update(f.read_bytes())
    _packages(digest)
    return digest.hexdigest()


def ref_inputs_hash(ref: str, repo: Path) -> tuple[str, str]:
    """(commit, digest of that commit's synth inputs and of the installed cdktf/provider versions)."""
    try:
        sha = git(repo, "rev-parse", "--verify", f"{ref}^{{commit}}").strip()
    except subprocess.CalledProcessError as exc:
        raise InfraError(f"{ref}: not a commit of {repo} ({exc.stderr.strip()})") from None
    paths = [*INPUT_DIRS, *INPUT_FILES, *INPUT_TREES, *SYNTH_CODE]
    digest = hashlib.sha256(git(repo, "ls-tree", "-r", sha, "--", *paths).encode())
    _packages(digest)
    return sha, digest.hexdigest()
