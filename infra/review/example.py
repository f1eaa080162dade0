"""The built-in example change that ``infra review --example`` (and ``make demo``) reviews against
the working tree, so that a newcomer sees a real report without writing a change first: staging's
AWS GPU node group moves to production's instance type and its GKE GPU pool may grow by a node."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from infra.errors import InfraError

DESCRIPTION = "example: staging AWS GPU nodes g6.xlarge → g6.2xlarge, GKE GPU pool max +1"


def apply(env_dir: Path) -> str:
    """Edit the staging file in ``env_dir`` (a copy); return what changed."""
    path = env_dir / "staging.yaml"
    if not path.exists():
        raise InfraError(f"{path}: the example change edits staging; there is no staging environment")
    data = yaml.safe_load(path.read_text())
    try:
        aws_pool = data["aws"]["cluster"]["gpu_node_groups"][0]
        gcp_pool = data["gcp"]["cluster"]["gpu_node_pools"][0]
    except (KeyError, IndexError, TypeError):
        raise InfraError(f"{path}: the example change needs an AWS GPU node group and a GKE GPU pool") from None
    aws_pool["instance_types"] = ["g6.2xlarge"]
    gcp_pool["max"] = int(gcp_pool.get("max", 1)) + 1
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return DESCRIPTION


@contextmanager
def example_change(env_dir: Path) -> Iterator[tuple[Path, Path, str]]:
    """A temporary copy of the environment files with the example change, synthesized; yields
    (outdir, env_dir, description)."""
    from infra.synth import synthesize

    with tempfile.TemporaryDirectory(prefix="infra-example-") as tmp:
        envs = Path(tmp) / "environments"
        shutil.copytree(env_dir, envs)
        what = apply(envs)
        result = synthesize(Path(tmp) / "cdktf.out", env_dir=envs, force=True)
        yield result.outdir, envs, what
