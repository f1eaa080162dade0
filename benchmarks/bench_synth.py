"""Wall time and peak memory of synthesizing every environment, ours vs the plain `cdktf synth`.

Each variant runs in its own process, one after another, writing to its own output folder:

* ``cdktf synth``        the real CLI (Node 20) running this app
* ``python main.py``     the app without the CLI (forced synth, lazy imports, Node 24)
* ``eager imports``      the app after a conventional `import cdktf_cdktf_provider_aws` etc. on Node 20:
                         what a cdktf Python project pays without our import handling
* ``infra synth``        ours, inputs changed (full synth)
* ``infra synth (warm)`` ours, inputs unchanged (skipped by the inputs hash)

Peak memory is the largest resident set of the process and the children it waited for (the
jsii Node process), from wait4(2). Results go to bench-results/synth.json.
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

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
REPEAT = int(os.environ.get("BENCH_REPEAT", "2"))


def measure(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(seconds, peak MB) of one run of ``cmd``."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{stderr[-2000:]}")
    return seconds, usage.ru_maxrss / 1024


def main() -> int:
    base_env = {
        **os.environ,
        "TERRAFORM_BINARY_NAME": str(BIN / "infra-terraform"),
        "CHECKPOINT_DISABLE": "1",
        "DISABLE_VERSION_CHECK": "1",
        "PATH": f"{BIN}:{os.environ['PATH']}",
    }
    work = Path(tempfile.mkdtemp(prefix="bench-synth-"))
    eager = (
        "import cdktf_cdktf_provider_aws, cdktf_cdktf_provider_google, cdktf_cdktf_provider_helm, runpy; "
        "runpy.run_path('main.py', run_name='__main__')"
    )
    node20 = shutil.which("node", path=os.environ["PATH"]) or "node"
    variants: list[tuple[str, list[str], dict[str, str]]] = [
        ("cdktf synth", [str(ROOT / "node_modules" / ".bin" / "cdktf"), "synth", "--output", str(work / "cli")], base_env),
        ("python main.py", [str(BIN / "python"), "main.py"], {**base_env, "CDKTF_OUTDIR": str(work / "app")}),
        (
            "eager imports, Node 20",
            [str(BIN / "python"), "-c", eager],
            {**base_env, "CDKTF_OUTDIR": str(work / "eager"), "JSII_NODE": node20, "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"},
        ),
        ("infra synth", [str(BIN / "infra"), "synth", "--force", "--outdir", str(work / "ours"), "--format", "json"], base_env),
        ("infra synth (warm)", [str(BIN / "infra"), "synth", "--outdir", str(work / "ours"), "--format", "json"], base_env),
    ]
    results = {}
    for name, cmd, env in variants:
        runs = [measure(cmd, env) for _ in range(REPEAT)]
        results[name] = {"seconds": statistics.median(r[0] for r in runs), "peak_mb": max(r[1] for r in runs), "runs": runs}
        print(f"{name:24s} {results[name]['seconds']:7.2f} s  {results[name]['peak_mb']:7.0f} MB peak", flush=True)
    shutil.rmtree(work, ignore_errors=True)

    cli = results["cdktf synth"]
    for name in ("infra synth", "infra synth (warm)", "eager imports, Node 20"):
        r = results[name]
        print(f"cdktf synth / {name}: {cli['seconds'] / r['seconds']:.1f}x time, {cli['peak_mb'] / r['peak_mb']:.1f}x memory")
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    (out / "synth.json").write_text(json.dumps({"repeat": REPEAT, "python": sys.version.split()[0], "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
