"""Speed of ``infra review`` (target: <= 60 s for three environments; <= 1.3x when the environment
count grows from 3 to 12).

A temporary git repository holds a copy of the project's synth inputs; the base commit has N
environments (3: the repository's; 12: nine more generated from dev), the head commit changes
staging (the built-in example change). Each size is reviewed once to fill the base cache (base
synth and base policy, keyed by the inputs' hash), then timed three times end to end in a new
process: base from the cache, head synthesized (its output removed before each run), diff,
permissions, policy (checkov + our rules on the touched environments), cost, parity.
Median of three. Results go to bench-results/review.json.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
COPY = ("environments", "stacks", "charts", "infra", "app/__init__.py", "app/k8s.py", "main.py", "cdktf.json", "pyproject.toml")
RUNS = 3


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=b@example.com", "-c", "user.name=bench", *args], cwd=repo, check=True, capture_output=True)


def make_repo(path: Path, envs: int) -> Path:
    for rel in COPY:
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / rel).is_dir():
            shutil.copytree(ROOT / rel, path / rel, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / rel, path / rel)
    dev = yaml.safe_load((path / "environments" / "dev.yaml").read_text())
    for i in range(4, envs + 1):
        extra = json.loads(json.dumps(dev))
        extra.update(name=f"dev{i}", branch=f"develop-{i}")
        extra.pop("promotes_to", None)
        extra["aws"]["network"]["cidr"] = f"10.{100 + i}.0.0/16"  # every range disjoint from the others
        extra["gcp"]["network"].update(
            subnet_cidr=f"10.{120 + i}.0.0/20", pods_cidr=f"10.{140 + i}.0.0/16", services_cidr=f"10.{160 + i}.0.0/20"
        )
        extra["gcp"]["cluster"]["master_cidr"] = f"172.16.{i}.0/28"
        (path / "environments" / f"dev{i}.yaml").write_text(yaml.safe_dump(extra, sort_keys=False))
    _git(path, "init", "-q", "-b", "main")
    _git(path, "add", ".")
    _git(path, "commit", "-q", "-m", "base")
    sys.path.insert(0, str(ROOT))
    from infra.review.example import apply

    apply(path / "environments")
    _git(path, "commit", "-q", "-am", "example change")
    return path


def review(repo: Path, cache: Path) -> float:
    shutil.rmtree(repo / "head.out", ignore_errors=True)
    env = {**os.environ, "INFRA_CACHE_DIR": str(cache)}
    cmd = [
        sys.executable,
        "-c",
        "import sys; from infra.cli.app import main; sys.exit(main(sys.argv[1:]))",
        "review",
        "--base",
        "main~1",
        "--outdir",
        "head.out",
        "--env-dir",
        "environments",
        "--format",
        "json",
        "-o",
        "review.json",
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"review failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return elapsed


def main() -> None:
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-review-") as tmp:
        for n in (3, 12):
            repo = make_repo(Path(tmp) / f"repo{n}", n)
            cache = Path(tmp) / f"cache{n}"
            first = review(repo, cache)
            times = [review(repo, cache) for _ in range(RUNS)]
            results[n] = {
                "first_s": round(first, 2),
                "median_s": round(statistics.median(times), 2),
                "runs_s": [round(t, 2) for t in times],
            }
            print(
                f"review of {n} environments: first (base synth + policy into the cache) {first:.1f} s; cached base: median {statistics.median(times):.1f} s {[f'{t:.1f}' for t in times]}"
            )
    ratio = results[12]["median_s"] / results[3]["median_s"]
    print(f"12 vs 3 environments: {ratio:.2f}x (target <= 1.3x); 3 environments {results[3]['median_s']:.1f} s (target <= 60 s)")
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    (out / "review.json").write_text(json.dumps({"results": results, "ratio_12_to_3": round(ratio, 2)}, indent=2) + "\n")


if __name__ == "__main__":
    main()
