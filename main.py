"""The cdktf app. ``python main.py`` and ``cdktf synth`` both run this.

It validates the environment files first (a bad file exits 2 before cdktf is imported), builds
one stack per environment plus its workloads stack, and replaces ``cdktf.out/`` only when the
whole synth succeeded. ``infra synth`` does the same and skips the work when no input changed.
It reaches the synth without loading the command-line tooling (typer, rich, the other verbs).
"""

from __future__ import annotations

import sys
from pathlib import Path

from environments.loader import ENV_DIR
from infra.cli.exits import guarded


def synth(env_dir: Path = ENV_DIR) -> int:
    from infra.synth import synthesize

    result = synthesize(force=True, env_dir=env_dir)
    print(f"synthesized {', '.join(result.stacks)} into {result.outdir} in {result.seconds:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(guarded(synth))
