"""``infra``: every command, registered here and only here, and the entry points."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer

from infra.cli import cloudbuild, cost, delivery, foundation, model, policy, providers, review, synth
from infra.cli.exits import EXIT_OK, EXIT_USAGE, guarded

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, help="ML platform infrastructure tooling.")

# the environment files and what they synthesize to
app.command()(synth.validate)
app.command()(synth.synth)
app.command()(synth.summary)
app.command("check-terraform")(synth.check_terraform)
# gates and estimates over the synthesized stacks
app.command()(policy.policy)
app.add_typer(cost.app, name="cost")
app.command()(cost.tco)
# what a change does, how environments differ, what the real infrastructure would do
app.command()(review.review)
app.command()(review.parity)
app.command("plan")(review.plan)
app.command()(review.drift)
# before the first apply: what must exist
app.command()(foundation.bootstrap)
app.command()(foundation.preflight)
# delivery: from a merge to a running environment, and on to the next one
app.command("ci-matrix")(delivery.ci_matrix)
app.command()(delivery.smoke)
app.command()(delivery.images)
app.command()(delivery.promote)
app.command("promotion-check")(delivery.promotion_check)
app.add_typer(delivery.deploy_app, name="deploy")
app.add_typer(model.app, name="model")
app.add_typer(cloudbuild.app, name="cloudbuild")
app.add_typer(providers.app, name="providers")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return its exit code (tests call this directly)."""

    def run() -> int:
        try:
            app(args=list(argv) if argv is not None else None, prog_name="infra")
        except SystemExit as exc:  # typer exits on its own: 0 after --help, 2 on a usage error, ours via typer.Exit
            return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_USAGE)
        return EXIT_OK

    return guarded(run)


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
