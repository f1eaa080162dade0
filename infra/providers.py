"""Provider dependency locks: each stack's ``.terraform.lock.hcl``, committed under ``locks/``.

The lock file records, per provider, the version and the checksums of its packages; ``terraform
init -lockfile=readonly`` installs only a package matching a recorded checksum and fails when the
configuration needs a provider or version the file does not hold (Terraform docs, "Dependency Lock
File" and ``init -lockfile=readonly``). cdktf writes no lock file and ``cdktf.out/`` is generated, so
the locks live in the repository, one per stack, and are copied next to the stack before init:

* ``infra providers lock [STACK…]`` (a maintainer, where registry.terraform.io is reachable):
  ``terraform providers lock`` for every platform a runner or a maintainer uses, into ``locks/``;
  review the diff like any dependency update.
* before every ``init`` of ``infra plan|drift`` and ``infra deploy plan|apply``: :func:`prepare`
  copies the stack's committed lock in and adds ``-lockfile=readonly``. In CI (``CI=true``, which
  GitHub Actions sets) a stack with providers but no committed lock, or a lock that does not hold
  the version the stack pins, is refused before any credential is used: a compromised or
  substituted provider package cannot be installed unnoticed.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from infra import engine
from infra.errors import InfraError
from infra.synthesized.reader import Stack

ROOT = Path(__file__).resolve().parent.parent
LOCK_DIR = ROOT / "locks"
LOCK_FILE = ".terraform.lock.hcl"
# GitHub-hosted ubuntu-24.04 and the CodeBuild runner (x86_64), arm runners, maintainers' Macs
PLATFORMS = ("linux_amd64", "linux_arm64", "darwin_arm64", "darwin_amd64")
DEFAULT_HOST, DEFAULT_NAMESPACE = "registry.terraform.io", "hashicorp"
_PROVIDER = re.compile(r'provider\s+"([^"]+)"\s*\{[^}]*?version\s*=\s*"([^"]+)"', re.S)


class LockError(InfraError):
    """A stack's provider lock is missing or does not match the stack (a usage error: exit 2)."""


def source_address(source: str) -> str:
    """``aws`` → ``registry.terraform.io/hashicorp/aws`` (Terraform's provider source address rules)."""
    parts = source.lower().split("/")
    if len(parts) == 1:
        return f"{DEFAULT_HOST}/{DEFAULT_NAMESPACE}/{parts[0]}"
    if len(parts) == 2:
        return f"{DEFAULT_HOST}/{parts[0]}/{parts[1]}"
    return "/".join(parts)


def required(stack: Stack) -> dict[str, str]:
    """The providers the stack pins: source address → version."""
    declared = stack.raw.get("terraform", {}).get("required_providers", {}) or {}
    return {source_address(str(p.get("source", name))): str(p.get("version", "")) for name, p in declared.items()}


def locked(text: str) -> dict[str, str]:
    """The providers a lock file holds: source address → version."""
    return {addr.lower(): version for addr, version in _PROVIDER.findall(text)}


def committed(stack_name: str, lock_dir: Path = LOCK_DIR) -> Path:
    return lock_dir / f"{stack_name}{LOCK_FILE}"


@dataclass(frozen=True)
class LockProblem:
    stack: str
    message: str

    def __str__(self) -> str:
        return f"{self.stack}: {self.message}"


def check(stack: Stack, lock_dir: Path = LOCK_DIR) -> list[LockProblem]:
    """What keeps ``stack`` from a locked init: no committed lock, a provider or version it lacks."""
    needs = required(stack)
    if not needs:
        return []
    path = committed(stack.name, lock_dir)
    if not path.is_file():
        return [
            LockProblem(
                stack.name, f"no committed provider lock {path.relative_to(lock_dir.parent)}; run `infra providers lock` and commit it"
            )
        ]
    have = locked(path.read_text())
    problems = []
    for source, version in sorted(needs.items()):
        if source not in have:
            problems.append(
                LockProblem(stack.name, f"{path.name} has no entry for {source} {version}; run `infra providers lock {stack.name}`")
            )
        elif version and have[source] != version:
            problems.append(
                LockProblem(
                    stack.name,
                    f"{path.name} locks {source} {have[source]}, the stack pins {version}; run `infra providers lock {stack.name}`",
                )
            )
    return problems


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def prepare(stack: Stack, lock_dir: Path = LOCK_DIR, *, require: bool | None = None) -> list[str]:
    """Put the committed lock next to the stack; the extra ``init`` arguments. ``require`` (default:
    in CI) refuses a stack whose lock is missing or stale instead of letting init write one."""
    require = in_ci() if require is None else require
    problems = check(stack, lock_dir)
    if problems and require:
        raise LockError("provider locks:\n" + "\n".join(f"  {p}" for p in problems))
    path = committed(stack.name, lock_dir)
    if required(stack) and path.is_file() and not problems:
        shutil.copyfile(path, stack.path.parent / LOCK_FILE)
        return ["-lockfile=readonly"]
    return []


def lock(
    stacks: list[Stack], lock_dir: Path = LOCK_DIR, *, platforms: tuple[str, ...] = PLATFORMS, fs_mirror: Path | None = None
) -> list[Path]:
    """``terraform providers lock`` in each stack's directory; copy each lock into ``lock_dir``.
    ``fs_mirror``: read packages from a filesystem mirror instead of the origin registry."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for stack in stacks:
        if not required(stack):
            continue
        work = stack.path.parent
        if committed(stack.name, lock_dir).is_file():  # keep the hashes already trusted; add platforms
            shutil.copyfile(committed(stack.name, lock_dir), work / LOCK_FILE)
        args = [f"-platform={p}" for p in platforms] + ([f"-fs-mirror={fs_mirror}"] if fs_mirror else [])
        engine.run_checked("providers", ["lock", *args], work)
        shutil.copyfile(work / LOCK_FILE, committed(stack.name, lock_dir))
        written.append(committed(stack.name, lock_dir))
    return written
