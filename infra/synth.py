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

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from environments.loader import ENV_DIR, load_environments
from infra.errors import InfraError, SynthError
from infra.synthesized.inputs import inputs_hash, ref_inputs_hash
from infra.synthesized.reader import DEFAULT_OUTDIR, is_complete, list_stacks

HASH_FILE = ".synth-inputs.sha256"
BASE_CACHE = Path(".infra-cache") / "base"  # below the repository; $INFRA_CACHE_DIR moves it
# what Terraform and the cdktf CLI leave in a stack's directory and a re-synth must keep
WORKING_FILES = (".terraform", ".terraform.lock.hcl", "terraform.tfstate", "terraform.tfstate.backup", "plan")


@dataclass(frozen=True)
class SynthResult:
    outdir: Path
    stacks: list[str]
    skipped: bool
    seconds: float


def synthesize(outdir: Path | None = None, *, env_dir: Path = ENV_DIR, force: bool = False) -> SynthResult:
    """Synthesize every environment into ``outdir`` (default: ``$CDKTF_OUTDIR`` or ``cdktf.out``)."""
    start = time.perf_counter()
    target = Path(outdir or os.environ.get("CDKTF_OUTDIR") or DEFAULT_OUTDIR).resolve()
    envs = load_environments(env_dir)  # raises EnvironmentFileError before anything is imported or written
    digest = inputs_hash(env_dir)
    hash_path = target / HASH_FILE
    if not force and is_complete(target) and hash_path.exists() and hash_path.read_text().strip() == digest:
        return SynthResult(target, list_stacks(target), True, time.perf_counter() - start)

    from stacks.app import build_app  # the import that loads cdktf and the provider bindings

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.synth-", dir=target.parent))
    try:
        app = build_app(list(envs.values()), str(staging))
        app.synth()
        if not is_complete(staging):
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


def base_cache_root(repo: Path) -> Path:
    return Path(os.environ["INFRA_CACHE_DIR"]) if os.environ.get("INFRA_CACHE_DIR") else repo / BASE_CACHE


def synth_ref(ref: str, repo: Path | None = None) -> tuple[Path, Path]:
    """Synthesize git ``ref`` in a temporary worktree (the checkout is never touched); return
    (outdir, env_dir). Cached by the hash of the ref's synth inputs, so commits that differ only in
    docs or tooling share one synth, and a second review of the same base is fast."""
    repo = (repo or Path.cwd()).resolve()
    sha, key = ref_inputs_hash(ref, repo)
    cached = base_cache_root(repo) / key[:24]
    if is_complete(cached / "cdktf.out"):
        return cached / "cdktf.out", cached / "environments"
    with tempfile.TemporaryDirectory(prefix="infra-base-") as tmp:
        worktree = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(worktree), sha], cwd=repo, check=True, capture_output=True)
        try:
            outdir = Path(tmp) / "cdktf.out"
            # the ref's own cdktf app (its main.py), so a ref synthesizes with the code it was written with
            env = {**os.environ, "CDKTF_OUTDIR": str(outdir)}
            proc = subprocess.run([sys.executable, str(worktree / "main.py")], cwd=worktree, capture_output=True, text=True, env=env)
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
