"""Wall time of the policy gate over every environment of the repository (``cdktf.out/`` must exist:
``make bench`` synthesizes first).

* ``infra policy``: checkov (one process per stack, one per core) plus our rules, end to end as CI runs it
* our rules alone (``run_checkov=False``), in process
* checkov on one stack, for the per-stack cost

Median of three runs each. Results go to bench-results/policy.json.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from environments.loader import ENV_DIR
from infra.policy import checkov
from infra.policy import gate as policy

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "cdktf.out"
RUNS = 3


def timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> int:
    if not (OUT / "manifest.json").exists():
        print("no cdktf.out/; run `make synth` first", file=sys.stderr)
        return 2
    infra = ROOT / ".venv" / "bin" / "infra"
    cli = [
        timed(lambda: subprocess.run([str(infra), "policy", "-f", "json"], cwd=ROOT, capture_output=True, check=False)) for _ in range(RUNS)
    ]
    rules = [timed(lambda: policy.run(OUT, ENV_DIR, run_checkov=False)) for _ in range(RUNS)]
    one = [timed(lambda: checkov.scan([OUT / "stacks" / "production"])) for _ in range(RUNS)]
    result = {
        "stacks": len(json.loads((OUT / "manifest.json").read_text())["stacks"]),
        "infra_policy_all_s": round(statistics.median(cli), 2),
        "rules_only_s": round(statistics.median(rules), 3),
        "checkov_one_stack_s": round(statistics.median(one), 2),
    }
    (ROOT / "bench-results").mkdir(exist_ok=True)
    (ROOT / "bench-results" / "policy.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
