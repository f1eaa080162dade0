"""``infra plan ENV`` and ``infra drift ENV``: the bundled Terraform engine over an environment's
synthesized stacks, its plan turned into the review's report shape.

Each stack directory (``cdktf.out/stacks/<stack>``) gets ``init``, then ``plan -detailed-exitcode``
(``-refresh-only`` for drift) written to ``plan.tfplan``, then ``show -json`` written to
``plan.json``, which ``infra review --plan STACK=plan.json`` reads. In CI these run with cloud
credentials; anywhere, they run on stacks that need no downloaded provider.
"""

from __future__ import annotations

import json
from pathlib import Path

from environments.loader import load_environments
from infra import engine
from infra.changes.model import ACTION_ORDER
from infra.changes.plan import changes_from_plan, output_changes
from infra.changes.table import load_table
from infra.errors import InfraError
from infra.review.compare import EnvReview, Review
from infra.synthesized.digest import synth_hash
from infra.synthesized.reader import env_of, load_stacks


def plan(outdir: Path, env: str, env_dir: Path, *, drift: bool = False) -> tuple[Review, dict[str, Path]]:
    """Plan every stack of ``env``; return the report and the plan JSON written for each stack."""
    stacks = [s for s in load_stacks(outdir) if env_of(s.name) == env]
    if not stacks:
        raise InfraError(f"{outdir}: no stack of environment {env!r}; run `make synth`")
    envs = load_environments(env_dir)
    table = load_table()
    digest, per_stack = synth_hash(stacks)
    er = EnvReview(env, "unchanged", env in envs.protected, digest, digest, per_stack)
    files: dict[str, Path] = {}
    outputs: list[str] = []
    for stack in stacks:
        work = stack.path.parent
        engine.run_checked("init", ["-input=false", "-no-color"], work)
        args = ["-input=false", "-no-color", "-detailed-exitcode", "-out=plan.tfplan"] + (["-refresh-only"] if drift else [])
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
        if code == engine.CHANGES:
            er.state = "changed"
    er.changes.sort(key=lambda c: (ACTION_ORDER[c.action], c.stack, c.path))
    what = "drift (refresh-only plan)" if drift else "plan"
    review = Review("state", f"{what} of {env}", [er])
    if drift:
        review.notes += [f"changed outside Terraform: {c.path} ({c.label})" for c in er.changes]
    review.notes += outputs
    if er.state == "changed" and not er.changes and not outputs:
        review.notes.append("the engine reports changes that touch no managed resource (outputs or data sources)")
    return review, files
