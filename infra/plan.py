"""``infra plan ENV`` and ``infra drift ENV``: the bundled Terraform engine over an environment's
synthesized stacks, its plan turned into the review's report shape.

Each stack directory (``cdktf.out/stacks/<stack>``), in apply order, gets ``init``, then
``plan -lock=false -detailed-exitcode`` (``-refresh-only`` for drift) written to ``plan.tfplan``,
then ``show -json`` written to ``plan.json``, which ``infra review --plan STACK=plan.json`` reads.
A stack after one with changes (``<env>-workloads`` after ``<env>``) is not planned: its inputs are
the outputs that stack has not applied yet; the review shows it offline.

``-lock=false``: a plan that is never applied takes no state lock, so the read-only plan role needs
no write on ``<key>.tflock`` (Terraform's command layer uses a no-op locker when ``-lock=false``:
hashicorp/terraform internal/command/meta_backend.go; the S3 lock file is ``<key>.tflock``,
internal/backend/remote-state/s3/backend_state.go). The plan files hold the prior state and every
value in clear (hashicorp/terraform internal/plans/planfile): they stay on the runner; only the
redacted report leaves it.

In CI these run with cloud credentials; anywhere, they run on stacks that need no downloaded provider.
"""

from __future__ import annotations

import json
from pathlib import Path

from environments.loader import Environments, loaded
from infra import engine, providers
from infra.changes.model import ACTION_ORDER
from infra.changes.plan import changes_from_plan, output_changes
from infra.changes.table import load_table
from infra.errors import InfraError
from infra.review.compare import EnvReview, Review
from infra.synthesized.digest import synth_hash
from infra.synthesized.reader import apply_order


def plan(
    outdir: Path, env: str, environments: Environments | Path, *, drift: bool = False, only: list[str] | None = None
) -> tuple[Review, dict[str, Path]]:
    """Plan the stacks of ``env`` (``only``: these of them); return the report and the plan JSON
    written for each stack."""
    stacks = apply_order(outdir, env)
    digest, per_stack = synth_hash(stacks)  # of the whole environment, whichever stacks are planned
    if only:
        if unknown := sorted(set(only) - {s.name for s in stacks}):
            raise InfraError(f"--stack {', '.join(unknown)}: not a stack of {env} ({', '.join(s.name for s in stacks)})")
        stacks = [s for s in stacks if s.name in only]
    envs = loaded(environments)
    table = load_table()
    er = EnvReview(env, "unchanged", env in envs.protected, digest, digest, per_stack)
    files: dict[str, Path] = {}
    outputs: list[str] = []
    skipped: list[str] = []
    waiting_on = ""
    for stack in stacks:
        work = stack.path.parent
        if waiting_on:  # its inputs are outputs of a stack not applied yet: a plan now would mislead (or fail)
            skipped.append(f"{stack.name} not planned: {waiting_on} has changes to apply first (the review shows it offline)")
            continue
        engine.run_checked("init", ["-input=false", "-no-color", *providers.prepare(stack)], work)
        args = ["-input=false", "-no-color", "-lock=false", "-detailed-exitcode", "-out=plan.tfplan"] + (["-refresh-only"] if drift else [])
        code, _ = engine.run_checked("plan", args, work)
        _, shown = engine.run_checked("show", ["-json", "plan.tfplan"], work)
        plan_json = json.loads(shown)
        files[stack.name] = work / "plan.json"
        files[stack.name].write_text(json.dumps(plan_json, indent=1) + "\n")
        er.plans[stack.name] = str(files[stack.name])
        changes = changes_from_plan(plan_json, stack, table, drift=drift)
        er.changes += changes
        outs = output_changes(plan_json)
        outputs += [f"{stack.name}: output `{name}` {'/'.join(actions)}" for name, actions in outs.items()]
        if drift and (changes or outs):
            er.state = "changed"  # a refresh-only plan also "changes" when it stores a data source's new read
        elif not drift and code == engine.CHANGES:
            er.state = "changed"
            waiting_on = stack.name
    er.changes.sort(key=lambda c: (ACTION_ORDER[c.action], c.stack, c.path))
    what = "drift (refresh-only plan)" if drift else "plan"
    review = Review("state", f"{what} of {env}", [er])
    if drift:
        review.notes += [f"changed outside Terraform: {c.path} ({c.label})" for c in er.changes]
    review.notes += outputs + skipped
    if er.state == "changed" and not er.changes and not outputs:
        review.notes.append("the engine reports changes that touch no managed resource (outputs or data sources)")
    return review, files
