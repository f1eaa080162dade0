"""checkov, run offline from its own virtual environment as a subprocess, one process per stack.

checkov pins an old boto3, so it never shares the project's environment: ``make install`` creates
``.venv-checkov`` from ``requirements-checkov.txt`` (``$CHECKOV_BIN`` points elsewhere). Stacks are
scanned one directory per process: checkov given several ``-d`` merges files of the same name
(every stack's file is ``cdk.tf.json``) and its graph checks would connect resources across
stacks. The processes run in parallel, one per core.

Nothing outside the command line can switch a check off: checkov runs in an empty working
directory with an empty home, so a ``.checkov.yaml`` (``skip-check: ...``) in the repository or the
user's home is never read. Exceptions are declared in the environment files, nowhere else.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.errors import InfraError

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BIN = ROOT / ".venv-checkov" / "bin" / "checkov"
TIMEOUT_S = 600
OFFLINE_ENV = {
    "BC_SKIP_MAPPING": "TRUE",  # no call for the Bridgecrew id mapping
    "CKV_SKIP_PACKAGE_UPDATE_CHECK": "TRUE",  # no call to PyPI for a newer checkov
    "LOG_LEVEL": "ERROR",
}


class CheckovError(InfraError):
    """checkov is missing or did not produce a report."""


@dataclass(frozen=True)
class CheckovResult:
    check_id: str
    name: str
    resource: str  # checkov's id: ``resource.<name>``, ``data.<name>`` or ``<type>.<name>`` (graph checks)
    lines: tuple[int, int]
    guideline: str | None
    severity: str | None


@dataclass
class CheckovReport:
    stack: str
    version: str
    passed: int
    failed: list[CheckovResult] = field(default_factory=list)
    skipped: list[CheckovResult] = field(default_factory=list)  # suppressed inside the scanned files
    parsing_errors: int = 0


def checkov_bin() -> Path:
    configured = os.environ.get("CHECKOV_BIN")
    path = Path(configured) if configured else DEFAULT_BIN
    if path.exists():
        return path
    found = shutil.which(str(path)) if configured else None
    if found:
        return Path(found)
    raise CheckovError(f"checkov not found at {path}; run `make install` (creates .venv-checkov) or set CHECKOV_BIN")


def available() -> bool:
    try:
        checkov_bin()
    except CheckovError:
        return False
    return True


def rules_fingerprint() -> str:
    """What decides a policy report besides the stacks: the pinned checkov and our rule files."""
    digest = hashlib.sha256(f"checkov available: {available()}".encode())
    for req in sorted(ROOT.glob("requirements-checkov.txt")):
        digest.update(req.read_bytes())
    for f in sorted((ROOT / "infra" / "policy").glob("*")):
        if f.is_file():
            digest.update(f.name.encode() + f.read_bytes())
    return digest.hexdigest()


def version() -> str:
    proc = subprocess.run([str(checkov_bin()), "--version"], capture_output=True, text=True, env=_env(), timeout=120)
    return proc.stdout.strip()


def _env(home: str | None = None) -> dict[str, str]:
    env = {**os.environ, **OFFLINE_ENV}
    if home is not None:
        env["HOME"] = home
    return env


def scan(stack_dirs: Iterable[Path], *, workers: int | None = None) -> list[CheckovReport]:
    """checkov over each stack directory (``cdktf.out/stacks/<stack>``), in parallel."""
    binary = checkov_bin()
    dirs = list(stack_dirs)
    workers = workers or max(1, min(len(dirs), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda d: _scan_one(binary, d), dirs))


def _scan_one(binary: Path, stack_dir: Path) -> CheckovReport:
    cmd = [
        str(binary),
        "--directory",
        str(stack_dir.resolve()),
        "--framework",
        "terraform_json",
        "--skip-download",  # no guidelines or policies from the platform
        "--output",
        "json",
        "--compact",
        "--soft-fail",  # we decide what fails, after applying the declared skips
        "--quiet",
    ]
    with tempfile.TemporaryDirectory(prefix="checkov-") as empty:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(empty), cwd=empty, timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise CheckovError(f"checkov on {stack_dir} took longer than {TIMEOUT_S} s") from None
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise CheckovError(f"checkov on {stack_dir} exited {proc.returncode} without a JSON report: {' / '.join(tail)}") from None
    return parse_report(stack_dir.name, data)


def parse_report(stack: str, data: Any) -> CheckovReport:
    """checkov's JSON: one object per framework (a list when several ran), or a bare summary when
    the directory held nothing it checks."""
    reports = data if isinstance(data, list) else [data]
    report = next((r for r in reports if r.get("check_type") == "terraform_json"), reports[0] if reports else {})
    summary = report.get("summary") or {}
    results = report.get("results") or {}
    return CheckovReport(
        stack=stack,
        version=str(summary.get("checkov_version", "")),
        passed=int(summary.get("passed", 0)),
        failed=[_result(r) for r in results.get("failed_checks", [])],
        skipped=[_result(r) for r in results.get("skipped_checks", [])],
        parsing_errors=int(summary.get("parsing_errors", 0)),
    )


def _result(raw: dict[str, Any]) -> CheckovResult:
    lines = raw.get("file_line_range") or [0, 0]
    return CheckovResult(
        check_id=str(raw["check_id"]),
        name=str(raw.get("check_name", "")),
        resource=str(raw.get("resource", "")),
        lines=(int(lines[0]), int(lines[-1])),
        guideline=raw.get("guideline"),
        severity=raw.get("severity"),
    )
