"""Speed of the cost estimator (``cdktf.out/`` must exist: ``make bench`` synthesizes first).

* pricing throughput: a generated synthesized stack of 100,000 resources (production's
  resources copied under new names until the count is reached), priced in process; reported
  with and without reading the JSON (target >= 100k resources/s for the pricing)
* the whole report for every environment after synth: in process (``estimate``) and end to end
  (``infra cost -f json`` in a new process, imports included) (target < 1 s)

Median of three runs each. Results go to bench-results/cost.json.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from environments.loader import load_environments
from infra.cost.catalog import load_catalog
from infra.cost.estimate import estimate, price_stack
from infra.cost.refresh import wanted
from infra.synthesized.reader import load_stack

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "cdktf.out"
RUNS = 3
TARGET = 100_000


def generate(path: Path) -> int:
    """A production-like stack of ``TARGET`` resources; references still point at real resources."""
    raw = json.loads((OUT / "stacks" / "production" / "cdk.tf.json").read_text())
    originals = [(t, n, v) for t, by_name in raw["resource"].items() for n, v in by_name.items()]
    count, copy = len(originals), 0
    while count < TARGET:
        copy += 1
        for rtype, name, values in originals:
            if count >= TARGET:
                break
            raw["resource"][rtype][f"{name}_copy{copy}"] = values
            count += 1
    path.write_text(json.dumps(raw))
    return count


def median_time(fn: object) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    if not (OUT / "manifest.json").exists():
        print("no cdktf.out/; run `make synth` first", file=sys.stderr)
        return 2
    catalog = load_catalog()
    env = load_environments()["production"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big" / "cdk.tf.json"
        path.parent.mkdir()
        n = generate(path)
        big = load_stack(path)
        price_s = median_time(lambda: price_stack(big, env, catalog))
        read_and_price_s = median_time(lambda: price_stack(load_stack(path), env, catalog))
        priced = price_stack(big, env, catalog)
    report_s = median_time(lambda: estimate(OUT))
    # what `infra cost refresh` asks the price APIs for: one estimate against a recording catalog
    wanted_s = median_time(lambda: wanted(OUT, ROOT / "environments", None, catalog))
    asked = len(wanted(OUT, ROOT / "environments", None, catalog))
    infra = ROOT / ".venv" / "bin" / "infra"
    cli_s = median_time(lambda: subprocess.run([str(infra), "cost", "-f", "json"], cwd=ROOT, capture_output=True, check=True))
    result = {
        "resources": n,
        "unsupported": sum(r.status == "unsupported" for r in priced),
        "pricing_s": round(price_s, 3),
        "pricing_resources_per_s": round(n / price_s),
        "read_and_pricing_s": round(read_and_price_s, 3),
        "read_and_pricing_resources_per_s": round(n / read_and_price_s),
        "report_all_envs_in_process_s": round(report_s, 3),
        "refresh_wanted_s": round(wanted_s, 3),
        "refresh_prices_asked": asked,
        "infra_cost_cli_s": round(cli_s, 3),
    }
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    (out / "cost.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
