"""The cdktf app. ``python main.py`` and ``cdktf synth`` both run this.

It validates the environment files first (a bad file exits 2 before cdktf is imported), builds
one stack per environment plus its workloads stack, and replaces ``cdktf.out/`` only when the
whole synth succeeded. ``infra synth`` does the same and skips the work when no input changed.
"""

from __future__ import annotations

import sys

from infra.cli import synth_app_main

if __name__ == "__main__":
    sys.exit(synth_app_main())
