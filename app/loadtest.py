"""``python -m app.loadtest``: a bounded load test against a running service.

It stops by itself: after ``--requests`` requests or ``--duration`` seconds, whichever comes
first, with ``--concurrency`` requests in flight. It reports throughput, errors and latency
percentiles, and exits 1 when any request failed or the p99 exceeds ``--max-p99-ms``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import httpx2 as httpx

# a real row from the dataset (class_0), used as the request body unless --body is given
SAMPLE_ROW: dict[str, float] = {
    "alcohol": 14.23,
    "malic_acid": 1.71,
    "ash": 2.43,
    "alcalinity_of_ash": 15.6,
    "magnesium": 127.0,
    "total_phenols": 2.8,
    "flavanoids": 3.06,
    "nonflavanoid_phenols": 0.28,
    "proanthocyanins": 2.29,
    "color_intensity": 5.64,
    "hue": 1.04,
    "od280_od315_of_diluted_wines": 3.92,
    "proline": 1065.0,
}


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    duration_s: float
    throughput_rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * pct // 100))
    return sorted_values[int(rank) - 1]


async def _run(url: str, body: dict[str, Any], requests: int, duration: float, concurrency: int) -> LoadResult:
    latencies: list[float] = []
    errors = 0
    issued = 0
    start = time.perf_counter()
    deadline = start + duration
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:

        async def worker() -> None:
            nonlocal issued, errors
            while issued < requests and time.perf_counter() < deadline:
                issued += 1
                t0 = time.perf_counter()
                try:
                    response = await client.post(url, json=body)
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append((time.perf_counter() - t0) * 1000)
                errors += not ok

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    done = sorted(latencies)
    return LoadResult(
        requests=len(done),
        errors=errors,
        duration_s=round(elapsed, 3),
        throughput_rps=round(len(done) / elapsed, 1) if elapsed else 0.0,
        p50_ms=round(percentile(done, 50), 3),
        p90_ms=round(percentile(done, 90), 3),
        p99_ms=round(percentile(done, 99), 3),
        max_ms=round(done[-1], 3) if done else 0.0,
    )


def run(url: str, *, requests: int = 2000, duration: float = 30.0, concurrency: int = 8, batch: int = 1) -> LoadResult:
    return asyncio.run(_run(url, {"instances": [SAMPLE_ROW] * batch}, requests, duration, concurrency))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.loadtest", description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8080/predict")
    parser.add_argument("--requests", type=int, default=2000, help="stop after this many requests (default: %(default)s)")
    parser.add_argument("--duration", type=float, default=30.0, help="or after this many seconds (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1, help="rows per request")
    parser.add_argument("--max-p99-ms", type=float, default=None, help="fail when p99 latency exceeds this")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    result = run(args.url, requests=args.requests, duration=args.duration, concurrency=args.concurrency, batch=args.batch)
    if args.json:
        print(json.dumps(asdict(result)))
    else:
        print(
            f"{result.requests} requests in {result.duration_s:.1f} s ({result.throughput_rps:.0f}/s, concurrency {args.concurrency}), "
            f"{result.errors} errors; latency p50 {result.p50_ms:.2f} ms, p90 {result.p90_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, max {result.max_ms:.2f} ms"
        )
    failed = result.errors > 0 or result.requests == 0 or (args.max_p99_ms is not None and result.p99_ms > args.max_p99_ms)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
