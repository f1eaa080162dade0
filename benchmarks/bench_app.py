"""Latency of one prediction and throughput of a bounded load test, for the model server.

* in-process: ``Model.predict`` on one row, and the whole FastAPI app in-process (ASGI, no socket)
* over HTTP: ``python -m app.serve`` started on 127.0.0.1 (uvicorn, as in the image), one request
  at a time on a kept-alive connection, then ``app.loadtest`` (fixed request count and duration,
  concurrency 8) for throughput.

Target (issue 4): p99 <= 10 ms for a single prediction over local HTTP. Results go to
bench-results/app.json; the exit code is 1 when the target is missed.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2 as httpx

from app.loadtest import SAMPLE_ROW, percentile
from app.loadtest import run as load_test
from app.model import Model
from app.pipeline import TrainConfig, run
from app.service import create_app
from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
N = int(os.environ.get("BENCH_APP_REQUESTS", "3000"))
TARGET_P99_MS = 10.0


def stats(samples_ms: list[float]) -> dict[str, float]:
    s = sorted(samples_ms)
    return {
        "n": len(s),
        "p50_ms": round(percentile(s, 50), 3),
        "p99_ms": round(percentile(s, 99), 3),
        "mean_ms": round(statistics.fmean(s), 3),
    }


def timed(fn: object, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def asgi_latency(model_dir: Path, n: int) -> list[float]:
    app = create_app(Settings(model_dir=model_dir), model=Model.load(model_dir))
    body = {"instances": [SAMPLE_ROW]}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as client:
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            r = await client.post("/predict", json=body)
            out.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200
        return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = run(TrainConfig(out_dir=Path(tmp))).path
        model = Model.load(model_dir)
        warm = 200
        timed(lambda: model.predict([SAMPLE_ROW]), warm)
        results: dict[str, object] = {"model_predict": stats(timed(lambda: model.predict([SAMPLE_ROW]), N))}
        asyncio.run(asgi_latency(model_dir, warm))
        results["asgi_in_process"] = stats(asyncio.run(asgi_latency(model_dir, N)))

        port = free_port()
        env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "MODEL_DIR": str(model_dir), "LOG_LEVEL": "WARNING"}
        server = subprocess.Popen(
            [sys.executable, "-m", "app.serve"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the service did not become ready")
                time.sleep(0.2)
            with httpx.Client(base_url=url) as client:
                body = {"instances": [SAMPLE_ROW]}
                timed(lambda: client.post("/predict", json=body), warm)
                results["http_sequential"] = stats(timed(lambda: client.post("/predict", json=body), N))
            load = load_test(f"{url}/predict", requests=N * 2, duration=30.0, concurrency=8)
            results["http_load_concurrency_8"] = {
                "requests": load.requests,
                "errors": load.errors,
                "duration_s": load.duration_s,
                "throughput_rps": load.throughput_rps,
                "p50_ms": load.p50_ms,
                "p99_ms": load.p99_ms,
            }
        finally:
            server.terminate()
            server.wait(timeout=20)

    print(f"{'measurement':<26} {'n':>6} {'p50 ms':>8} {'p99 ms':>8}")
    for name, r in results.items():
        r = dict(r)  # type: ignore[call-overload]
        print(f"{name:<26} {r.get('n', r.get('requests')):>6} {r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f}")
    load_result = results["http_load_concurrency_8"]
    print(f"load test: {load_result['throughput_rps']} requests/s, {load_result['errors']} errors")  # type: ignore[index]
    p99 = results["http_sequential"]["p99_ms"]  # type: ignore[index]
    print(f"single prediction over local HTTP: p99 {p99} ms (target <= {TARGET_P99_MS} ms)")
    out = ROOT / "bench-results" / "app.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({**results, "target_p99_ms": TARGET_P99_MS}, indent=2) + "\n")
    return 0 if p99 <= TARGET_P99_MS else 1


if __name__ == "__main__":
    sys.exit(main())
