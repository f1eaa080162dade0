"""providers lock|check: the committed provider dependency locks of the synthesized stacks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from infra.cli.options import OutdirOpt, outdir_or_default
from infra.cli.output import say
from infra.errors import EXIT_USAGE

app = typer.Typer(no_args_is_help=True, help="Provider dependency locks, one per stack, committed under locks/.")

StackArgs = Annotated[list[str] | None, typer.Argument(help="Stacks (default: every synthesized stack).")]
LockDirOpt = Annotated[Path | None, typer.Option("--lock-dir", help="Where the committed locks live (default: locks/).")]


@app.command("lock")
def lock(
    stacks: StackArgs = None,
    platform: Annotated[
        list[str] | None,
        typer.Option("--platform", help="Target platform (repeat; default: linux_amd64, linux_arm64, darwin_arm64, darwin_amd64)."),
    ] = None,
    fs_mirror: Annotated[
        Path | None, typer.Option("--fs-mirror", help="Read packages from this filesystem mirror, not the registry.")
    ] = None,
    lock_dir: LockDirOpt = None,
    outdir: OutdirOpt = None,
) -> None:
    """Write each stack's provider lock (every platform's checksums) into locks/: run where
    registry.terraform.io is reachable, then commit the files. Keeps the checksums already there."""
    from infra import providers
    from infra.synthesized.reader import load_stacks

    selected = list(load_stacks(outdir_or_default(outdir), stacks or None))
    written = providers.lock(
        selected, lock_dir or providers.LOCK_DIR, platforms=tuple(platform or providers.PLATFORMS), fs_mirror=fs_mirror
    )
    for path in written:
        say(str(path), prefix="locked")
    say(f"{len(written)} lock file(s); review and commit them", prefix="done:")


@app.command("check")
def check(stacks: StackArgs = None, lock_dir: LockDirOpt = None, outdir: OutdirOpt = None) -> None:
    """Every stack with providers has a committed lock holding the versions it pins; exit 2 with
    what to run otherwise (what `infra deploy`, `plan` and `drift` require in CI)."""
    from infra import providers
    from infra.synthesized.reader import load_stacks

    problems = [
        p for s in load_stacks(outdir_or_default(outdir), stacks or None) for p in providers.check(s, lock_dir or providers.LOCK_DIR)
    ]
    for p in problems:
        say(str(p), prefix="missing:", prefix_style="red")
    if problems:
        raise typer.Exit(EXIT_USAGE)
    say("every stack's providers are locked", prefix="ok:", prefix_style="green")
