"""git, run one way: ``git ARGS`` in a repository, its stdout."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository this checkout of the tooling lives in


def git(repo: Path, *args: str) -> str:
    """``git ARGS`` in ``repo``; its stdout (``CalledProcessError`` when it fails)."""
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout
