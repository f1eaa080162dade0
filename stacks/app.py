"""Build the cdktf app: one ``EnvironmentStack`` per environment, plus its workloads stack."""

from __future__ import annotations

from cdktf import App

from environments.schema import Environment
from stacks.environment_stack import EnvironmentStack
from stacks.registries_stack import RegistriesStack, has_registries
from stacks.workloads_stack import WorkloadsStack, has_workloads


def build_app(envs: list[Environment], outdir: str) -> App:
    app = App(outdir=outdir, skip_validation=False)
    by_name = {e.name: e for e in envs}
    for env in envs:
        promotes_to = by_name.get(env.promotes_to or "")
        stack = EnvironmentStack(app, env, promotes_to=promotes_to)
        if has_registries(env):
            stack.add_dependency(RegistriesStack(app, env, promotes_to=promotes_to))
        if has_workloads(env):
            WorkloadsStack(app, env, depends_on=stack)
    return app
