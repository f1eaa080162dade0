"""How fast a bad environment file is refused: the five kinds a new user writes (an alias bomb,
invalid UTF-8, a duplicated key, two problems across files, a message with square brackets),
each through `python main.py`'s path (`infra synth` in a new process, imports included), with
the exit code and the time (target: exit 2 in under a second each). Median of three runs;
results go to bench-results/bad-input.json."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
RUNS = 3
TARGET_S = 1.0


def _bomb(d: Path) -> None:
    lines = ['x0: &x0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 10)}]" for i in range(1, 10)]
    f = d / "dev.yaml"
    f.write_text(f.read_text() + "\n".join(lines) + "\n")


def _utf8(d: Path) -> None:
    f = d / "staging.yaml"
    f.write_bytes(f.read_bytes() + b"# caf\xe9\n")


def _duplicate(d: Path) -> None:
    f = d / "dev.yaml"
    f.write_text(f.read_text().replace("branch: develop\n", "branch: develop\nbranch: main\n"))


def _across(d: Path) -> None:
    f = d / "staging.yaml"
    data = yaml.safe_load(f.read_text())
    data["branch"] = "main"
    f.write_text(yaml.safe_dump(data, sort_keys=False))


def _brackets(d: Path) -> None:
    f = d / "dev.yaml"
    f.write_text(f.read_text().replace("project: mlp\n", "project: ML-Platform\n"))


CASES: dict[str, Callable[[Path], None]] = {
    "alias bomb": _bomb,
    "invalid UTF-8": _utf8,
    "duplicated key": _duplicate,
    "two problems across files": _across,
    "square brackets": _brackets,
}


def main() -> int:
    results = {}
    for name, make in CASES.items():
        with tempfile.TemporaryDirectory() as tmp:
            env_dir = Path(tmp) / "environments"
            shutil.copytree(ROOT / "environments", env_dir, ignore=shutil.ignore_patterns("*.py", "__pycache__", "schema"))
            make(env_dir)
            args = ["synth", "--env-dir", str(env_dir), "--outdir", str(Path(tmp) / "out")]
            code = [sys.executable, "-c", "import sys; from infra.cli.app import main; sys.exit(main(sys.argv[1:]))", *args]
            times, exit_code = [], 0
            for _ in range(RUNS):
                start = time.perf_counter()
                exit_code = subprocess.run(code, cwd=ROOT, capture_output=True, check=False).returncode
                times.append(time.perf_counter() - start)
            seconds = statistics.median(times)
            results[name] = {"exit": exit_code, "seconds": round(seconds, 3), "ok": exit_code == 2 and seconds < TARGET_S}
            print(f"{name:28} exit {exit_code}  {seconds:.2f} s  {'ok' if results[name]['ok'] else 'MISSED'}")
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    (out / "bad-input.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
