"""Which two snapshots a review compares: the base (a git ref, synthesized in a temporary worktree,
or an existing synth output) and the head (the working tree, another git ref, or the built-in
example change), then :func:`infra.review.compare.review` over them."""

from __future__ import annotations

from pathlib import Path

from infra.errors import InfraError
from infra.review.compare import CHECKS, Review, review


def checks_without(skip: list[str] | None) -> tuple[str, ...]:
    unknown = [c for c in skip or [] if c not in CHECKS]
    if unknown:
        raise InfraError(f"--skip {', '.join(unknown)}: one of {', '.join(CHECKS)}")
    return tuple(c for c in CHECKS if c not in (skip or []))


def review_change(
    *,
    outdir: Path | None,
    env_dir: Path,
    base: str | None = None,
    head: str | None = None,
    base_outdir: Path | None = None,
    base_env_dir: Path | None = None,
    example: bool = False,
    names: list[str] | None = None,
    plans: dict[str, Path] | None = None,
    skip: list[str] | None = None,
) -> Review:
    from infra.synth import synth_ref, synthesize

    checks = checks_without(skip)
    if example:
        if base or head or base_outdir:
            raise InfraError("--example reviews a built-in change against the working tree; it takes no --base/--head")
        from infra.review.example import example_change

        with example_change(env_dir) as (head_out, head_envs, what):
            base_out = synthesize(outdir, env_dir=env_dir).outdir
            return review(base_out, env_dir, head_out, head_envs, names=names, checks=checks, base_label="working tree", head_label=what)
    if (base is None) == (base_outdir is None):
        raise InfraError("infra review needs exactly one of --base REF or --base-outdir DIR (or --example)")
    cache_dir = None
    if base is not None:
        base_out, base_envs = synth_ref(base)
        base_label, cache_dir = base, base_out.parent
    else:
        assert base_outdir is not None
        base_out, base_envs, base_label = base_outdir, base_env_dir or env_dir, str(base_outdir)
    if head is not None:
        head_out, head_envs = synth_ref(head)
        head_label = head
    else:
        head_out = synthesize(outdir, env_dir=env_dir).outdir  # skipped when no input changed
        head_envs, head_label = env_dir, "working tree"
    return review(
        base_out,
        base_envs,
        head_out,
        head_envs,
        names=names,
        plans=plans,
        checks=checks,
        base_label=base_label,
        head_label=head_label,
        cache_dir=cache_dir,
    )
