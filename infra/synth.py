"""Synthesize every environment into ``cdktf.out/``, atomically, and skip it when nothing changed.

* The environment files are loaded and validated before any cdktf or provider code is imported,
  so a bad file fails in well under a second and leaves ``cdktf.out/`` untouched.
* The app is synthesized into a sibling temporary directory; only a complete synth replaces the
  previous output (Terraform working files under each stack are carried over).
* A hash of every input (environment files, stack and loader code, the serving workload's renderer
  and chart, cdktf.json, the versions of the cdktf and provider packages) is stored next to the
  output; an unchanged hash skips the synth.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from environments.loader import ENV_DIR, environment_files, load_environments
from infra.errors import InfraError, SynthError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTDIR = ROOT / "cdktf.out"
HASH_FILE = ".synth-inputs.sha256"
INPUT_DIRS = ("environments", "stacks")  # every *.py below them
# modules outside those folders that the stacks import (the serving workload), and the chart the
# workloads stack ships as an asset; a test compares this list with what the stacks import
INPUT_FILES = ("cdktf.json", "main.py", "app/__init__.py", "app/k8s.py")
INPUT_TREES = ("charts",)  # every file below them
PACKAGES = ("cdktf", "constructs", "jsii", "cdktf-cdktf-provider-aws", "cdktf-cdktf-provider-google", "cdktf-cdktf-provider-helm")
# what Terraform and the cdktf CLI leave in a stack's directory and a re-synth must keep
BASE_CACHE = Path(".infra-cache") / "base"  # below the repository; $INFRA_CACHE_DIR moves it
WORKING_FILES = (".terraform", ".terraform.lock.hcl", "terraform.tfstate", "terraform.tfstate.backup", "plan")


@dataclass(frozen=True)
class SynthResult:
    outdir: Path
    stacks: list[str]
    skipped: bool
    seconds: float


def input_files(env_dir: Path = ENV_DIR) -> list[Path]:
    """Every file whose content decides the synthesized output."""
    files = [*environment_files(env_dir), env_dir / "facts.yaml", *(ROOT / f for f in INPUT_FILES)]
    for folder in INPUT_DIRS:
        files += sorted((ROOT / folder).rglob("*.py"))
    for tree in INPUT_TREES:
        files += sorted(p for p in (ROOT / tree).rglob("*") if p.is_file())
    return files


def inputs_hash(env_dir: Path = ENV_DIR) -> str:
    """A digest of everything that decides the synthesized output."""
    digest = hashlib.sha256()
    for f in input_files(env_dir):
        if f.exists():
            digest.update(str(f.relative_to(ROOT) if f.is_relative_to(ROOT) else f).encode())
            digest.update(f.read_bytes())
    for pkg in PACKAGES:
        try:
            digest.update(f"{pkg}=={importlib.metadata.version(pkg)}".encode())
        except importlib.metadata.PackageNotFoundError:
            digest.update(f"{pkg} missing".encode())
    return digest.hexdigest()


def _is_complete(outdir: Path) -> bool:
    manifest = outdir / "manifest.json"
    if not manifest.exists():
        return False
    stacks = json.loads(manifest.read_text())["stacks"]
    return all((outdir / s["synthesizedStackPath"]).exists() for s in stacks.values())


def synthesize(outdir: Path | None = None, *, env_dir: Path = ENV_DIR, force: bool = False) -> SynthResult:
    """Synthesize every environment into ``outdir`` (default: ``$CDKTF_OUTDIR`` or ``cdktf.out``)."""
    start = time.perf_counter()
    target = Path(outdir or os.environ.get("CDKTF_OUTDIR") or DEFAULT_OUTDIR).resolve()
    envs = load_environments(env_dir)  # raises EnvironmentFileError before anything is imported or written
    digest = inputs_hash(env_dir)
    hash_path = target / HASH_FILE
    if not force and _is_complete(target) and hash_path.exists() and hash_path.read_text().strip() == digest:
        return SynthResult(target, list_stacks(target), True, time.perf_counter() - start)

    from stacks.app import build_app  # the import that loads cdktf and the provider bindings

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.synth-", dir=target.parent))
    try:
        app = build_app(list(envs.values()), str(staging))
        app.synth()
        if not _is_complete(staging):
            raise SynthError(f"synth wrote no complete manifest in {staging}; {target} was left as it was")
        (staging / HASH_FILE).write_text(digest + "\n")
        _replace(target, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return SynthResult(target, list_stacks(target), False, time.perf_counter() - start)


def _replace(target: Path, staging: Path) -> None:
    """Swap ``staging`` into ``target``, keeping Terraform's working files of each stack."""
    if target.exists():
        for stack_dir in (target / "stacks").glob("*"):
            new_dir = staging / "stacks" / stack_dir.name
            if not new_dir.is_dir():
                continue
            for name in WORKING_FILES:
                if (stack_dir / name).exists() and not (new_dir / name).exists():
                    os.rename(stack_dir / name, new_dir / name)
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.rename(target, old)
        os.rename(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(staging, target)


def list_stacks(outdir: Path) -> list[str]:
    manifest = json.loads((outdir / "manifest.json").read_text())
    return list(manifest["stacks"])


def stack_json_path(outdir: Path, stack: str) -> Path:
    return outdir / "stacks" / stack / "cdk.tf.json"


def git(repo: Path, *args: str) -> str:
    """``git ARGS`` in ``repo``; its stdout (``CalledProcessError`` when it fails)."""
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def ref_inputs_hash(ref: str, repo: Path) -> tuple[str, str]:
    """(commit, digest of that commit's synth inputs and of the installed cdktf/provider versions)."""
    try:
        sha = git(repo, "rev-parse", "--verify", f"{ref}^{{commit}}").strip()
    except subprocess.CalledProcessError as exc:
        raise InfraError(f"{ref}: not a commit of {repo} ({exc.stderr.strip()})") from None
    paths = [*INPUT_DIRS, *INPUT_FILES, *INPUT_TREES, "infra/synth.py"]
    digest = hashlib.sha256(git(repo, "ls-tree", "-r", sha, "--", *paths).encode())
    for pkg in PACKAGES:
        try:
            digest.update(f"{pkg}=={importlib.metadata.version(pkg)}".encode())
        except importlib.metadata.PackageNotFoundError:
            digest.update(f"{pkg} missing".encode())
    return sha, digest.hexdigest()


def base_cache_root(repo: Path) -> Path:
    return Path(os.environ["INFRA_CACHE_DIR"]) if os.environ.get("INFRA_CACHE_DIR") else repo / BASE_CACHE


def synth_ref(ref: str, repo: Path | None = None) -> tuple[Path, Path]:
    """Synthesize git ``ref`` in a temporary worktree (the checkout is never touched); return
    (outdir, env_dir). Cached by the hash of the ref's synth inputs, so commits that differ only in
    docs or tooling share one synth, and a second review of the same base is fast."""
    repo = (repo or Path.cwd()).resolve()
    sha, key = ref_inputs_hash(ref, repo)
    cached = base_cache_root(repo) / key[:24]
    if _is_complete(cached / "cdktf.out"):
        return cached / "cdktf.out", cached / "environments"
    with tempfile.TemporaryDirectory(prefix="infra-base-") as tmp:
        worktree = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(worktree), sha], cwd=repo, check=True, capture_output=True)
        try:
            outdir = Path(tmp) / "cdktf.out"
            code = (
                "import sys; sys.path.insert(0, sys.argv[1]); from infra.cli import main; "
                "sys.exit(main(['synth', '--force', '--outdir', sys.argv[2], '--env-dir', sys.argv[1] + '/environments', '--format', 'json']))"
            )
            proc = subprocess.run([sys.executable, "-c", code, str(worktree), str(outdir)], cwd=worktree, capture_output=True, text=True)
            if proc.returncode != 0:
                raise InfraError(f"{ref}: synthesizing {sha[:12]} failed:\n{proc.stderr.strip()[-2000:]}")
            staging = cached.with_name(cached.name + ".tmp")
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            shutil.copytree(outdir, staging / "cdktf.out")
            shutil.copytree(worktree / "environments", staging / "environments")
            (staging / "commit").write_text(sha + "\n")
            shutil.rmtree(cached, ignore_errors=True)
            staging.rename(cached)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=repo, capture_output=True)
    return cached / "cdktf.out", cached / "environments"
