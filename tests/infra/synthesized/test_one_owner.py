"""Facts decided once, and a test that would have caught each disagreement: what a secret looks like
(the policy fails it and every report masks it), how many zones a GKE pool spans (the same for the
summary, the cost and the alarms), who promotes into whom, and the serving/registry names."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from environments import facts
from environments.loader import load_environments
from environments.schema import Environment
from infra.changes.diff import diff_stacks
from infra.changes.table import load_table
from infra.cost.catalog import load_catalog
from infra.cost.estimate import price_stack
from infra.policy.rules import RULES, Context
from infra.review.report import markdown
from infra.summary.model import summarize
from infra.synthesized.gpu_pools import gpu_pools
from infra.synthesized.reader import Stack
from infra.synthesized.secrets import MASK, find_secrets, is_sensitive
from tests.conftest import ROOT, read_env, write_env

# shapes of real credentials (not real ones: fixed letters)
GOOGLE_KEY = "AIza" + "B" * 35
SESSION_KEY = "ASIA" + "C" * 16


def _stack(values: dict[str, Any], name: str = "dev") -> Stack:
    raw = {"resource": {"aws_lambda_function": {"fn": {"//": {"metadata": {"path": f"{name}/fn"}}, **values}}}}
    return Stack(name, Path(f"/nowhere/{name}/cdk.tf.json"), raw)


@pytest.mark.parametrize("secret", [GOOGLE_KEY, SESSION_KEY])
def test_a_secret_the_policy_fails_is_masked_in_the_review(secret: str, environments: dict[str, Environment]) -> None:
    base = _stack({"function_name": "f", "environment": {"variables": {"MAPS": "none"}}})
    head = _stack({"function_name": "f", "environment": {"variables": {"MAPS": f"key={secret}"}}})
    # the policy gate: MLP011 fails on it
    outcomes = list(RULES["MLP011"].check(Context(env=environments["dev"], stacks=[head], promoted=False, production=False)))
    assert any(not o.passed for o in outcomes) and list(find_secrets(head.raw))
    # the review: the change is shown, its value never
    (change,) = diff_stacks(base, head, load_table())
    (attr,) = change.attrs
    assert attr.after == MASK and attr.sensitive
    assert secret not in json.dumps(change.to_dict())


def test_names_are_not_secrets() -> None:
    assert not is_sensitive("secret_arn", "arn:aws:secretsmanager:us-east-1:1:secret:x")
    assert not is_sensitive("token_ttl", 300)
    assert is_sensitive("environment.variables.API_TOKEN", "${var.x}")  # masked in reports whatever it holds


def test_one_zone_rule_for_summary_cost_and_alarms(environments: dict[str, Environment]) -> None:
    """A regional GKE GPU pool without named zones: three zones (GKE's default) everywhere. Hand check:
    max 3 per zone × 3 zones × 1 L4 = 9 GPUs; the at-max alarm fires above 3 × 3 - 0.5 = 8.5 nodes."""
    from cdktf import Testing

    from stacks.environment_stack import EnvironmentStack

    env = environments["staging"]
    assert env.gcp is not None and env.gcp.cluster is not None
    pool = env.gcp.cluster.gpu_node_pools[0].model_copy(update={"zones": []})
    cluster = env.gcp.cluster.model_copy(update={"gpu_node_pools": [pool]})
    changed = env.model_copy(update={"gcp": env.gcp.model_copy(update={"cluster": cluster})})
    stack_obj = EnvironmentStack(Testing.app(), changed)
    raw = json.loads(Testing.synth(stack_obj))
    stack = Stack("staging", Path("/nowhere/staging/cdk.tf.json"), raw)

    expected, why = facts.gke_zone_count(env.gcp.region)
    assert (expected, why) == (3, "3 zones (regional default)")
    (gke,) = [p for p in gpu_pools(stack) if p.cloud == "gcp"]
    assert (gke.zones, gke.max_gpus) == (3, pool.max * 3 * pool.accelerator.count)
    summary = summarize(stack)
    assert [p.max_gpus for p in summary.gpu_pools if p.cloud == "gcp"] == [9]
    costs = {r.address: r for r in price_stack(stack, env, load_catalog())}
    notes = " ".join(i.note for i in costs[gke.resource.address].items)
    assert "3 zones (regional default)" in notes
    alarm = next(v for k, v in raw["resource"]["google_monitoring_alert_policy"].items() if "gpu-at-max" in k)
    assert alarm["conditions"][0]["condition_threshold"]["threshold_value"] == pytest.approx(pool.max * 3 - 0.5)


def test_who_promotes_into_whom_is_answered_by_the_environments(env_dir: Path) -> None:
    """A fourth environment in the chain (dev → qa → staging → production): every reader follows it."""
    from infra.ci_matrix import entry
    from infra.policy.gate import run as policy_run  # noqa: F401  (the gate reads envs.promotion_targets)

    dev = read_env(env_dir, "dev")
    qa = json.loads(json.dumps(dev))
    qa.update(name="qa", branch="qa", promotes_to="staging")
    dev["promotes_to"] = "qa"
    # qa needs its own address ranges and no policy skips (something promotes into it)
    qa["aws"]["network"]["cidr"] = "10.40.0.0/16"
    qa["gcp"]["network"].update(subnet_cidr="10.41.0.0/20", pods_cidr="10.42.0.0/16", services_cidr="10.43.0.0/20")
    qa["gcp"]["cluster"]["master_cidr"] = "172.16.0.48/28"
    qa["policy"] = {"skips": []}
    write_env(env_dir, "dev", dev)
    write_env(env_dir, "qa", qa)
    envs = load_environments(env_dir)
    assert list(envs) == ["dev", "qa", "staging", "production"]
    assert envs.source_of("staging").name == "qa" and envs.source_of("qa").name == "dev"  # type: ignore[union-attr]
    assert {"qa", "staging", "production"} <= envs.protected
    assert entry(envs["staging"], envs)["source_env"] == "qa"
    assert envs.check_promotion("qa", "staging")[1].name == "staging"
    with pytest.raises(LookupError, match="dev does not promote to staging"):
        envs.check_promotion("dev", "staging")


def test_serving_and_registry_names_have_one_owner() -> None:
    """`app/layout.py` owns the serving namespace and the registry layout; no other module spells them."""
    spelled = re.compile(r"[\"'](model-serving|ml-training|models/|aliases/)")
    offenders = []
    for folder in ("app", "stacks", "infra", "environments"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "layout.py":
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if spelled.search(line) and not line.lstrip().startswith("#"):
                    offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_the_review_comment_never_shows_a_masked_value(synth_out: Path, environments: dict[str, Environment]) -> None:
    from infra.review.compare import EnvReview, Review

    base = _stack({"function_name": "f", "environment": {"variables": {"X": "1"}}})
    head = _stack({"function_name": "f", "environment": {"variables": {"X": GOOGLE_KEY}}})
    er = EnvReview("dev", "changed", False, "h", "b", changes=diff_stacks(base, head, load_table()))
    text = markdown(Review("base", "head", [er]))
    assert GOOGLE_KEY not in text and MASK in text
