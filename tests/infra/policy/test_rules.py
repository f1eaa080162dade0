"""Each of our rules (MLP0nn) on a minimal stack: the violating one fires exactly that rule, the
clean one passes every rule. Stacks are synthesized JSON, the only thing the rules read."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from environments.schema import Environment
from infra.policy.rules import RULES, Context, evaluate
from infra.synthesized.reader import Stack
from infra.synthesized.secrets import find_secrets

Raw = dict[str, Any]


def tags(env: Environment) -> dict[str, str]:
    return dict(env.all_tags)


def base(env: Environment) -> Raw:
    """What every clean minimal stack holds: a budget with alerts on each cloud of the environment."""
    raw: Raw = {"provider": {"aws": [{"region": "us-east-1"}], "google": [{"project": "p"}]}, "resource": {}}
    raw["resource"]["aws_budgets_budget"] = {
        "budget": {
            "limit_amount": "100.00",
            "notification": [{"threshold": 80, "subscriber_email_addresses": ["a@example.com"]}],
            "tags": tags(env),
        }
    }
    raw["resource"]["google_billing_budget"] = {
        "budget": {
            "amount": {"specified_amount": {"units": "100"}},
            "threshold_rules": [{"threshold_percent": 0.8}],
            "all_updates_rule": {"monitoring_notification_channels": ["${google_monitoring_notification_channel.c.id}"]},
        }
    }
    return raw


def with_resources(env: Environment, resources: dict[str, dict[str, Raw]]) -> Raw:
    raw = base(env)
    for rtype, by_name in resources.items():
        raw["resource"].setdefault(rtype, {}).update(copy.deepcopy(by_name))
    return raw


def ecr(env: Environment) -> dict[str, dict[str, Raw]]:
    return {
        "aws_ecr_repository": {
            "repo": {
                "name": "r",
                "image_tag_mutability": "IMMUTABLE",
                "image_scanning_configuration": {"scan_on_push": True},
                "tags": tags(env),
            }
        },
        "aws_ecr_lifecycle_policy": {"repo-lifecycle": {"repository": "${aws_ecr_repository.repo.name}", "policy": "{}"}},
    }


def artifact_registry(env: Environment) -> dict[str, dict[str, Raw]]:
    return {
        "google_artifact_registry_repository": {
            "ar": {
                "format": "DOCKER",
                "docker_config": {"immutable_tags": True},
                "vulnerability_scanning_config": {"enablement_config": "INHERITED"},
                "cleanup_policies": [{"id": "keep", "action": "KEEP"}],
                "labels": tags(env),
            }
        },
        "google_project_service": {"scanning": {"service": "containerscanning.googleapis.com"}},
    }


def eks_gpu(env: Environment, *, min_size: int = 0, capacity: str = "SPOT", name: str = "gpu") -> dict[str, dict[str, Raw]]:
    group = {
        "ami_type": "AL2023_x86_64_NVIDIA",
        "instance_types": ["g6.xlarge"],
        "capacity_type": capacity,
        "scaling_config": {"min_size": min_size, "max_size": 2, "desired_size": min_size},
        "tags": tags(env),
    }
    return {"aws_eks_node_group": {name: group}}


def gke_gpu(env: Environment, *, min_nodes: int = 0) -> dict[str, dict[str, Raw]]:
    pool = {
        "autoscaling": {"min_node_count": min_nodes, "max_node_count": 2},
        "node_config": {"machine_type": "g2-standard-8", "spot": True},
    }
    return {"google_container_node_pool": {"gpu": pool}}


def eks_cluster(env: Environment, *, public: bool, cidrs: list[str] | None = None) -> dict[str, dict[str, Raw]]:
    vpc: Raw = {"endpoint_private_access": True, "endpoint_public_access": public}
    if cidrs is not None:
        vpc["public_access_cidrs"] = cidrs
    return {"aws_eks_cluster": {"eks": {"vpc_config": vpc, "tags": tags(env)}}}


def gke_cluster(env: Environment, *, networks: list[str] | None) -> dict[str, dict[str, Raw]]:
    cluster: Raw = {
        "private_cluster_config": {"enable_private_nodes": True, "enable_private_endpoint": False},
        "resource_labels": tags(env),
    }
    if networks is not None:
        cluster["master_authorized_networks_config"] = {"cidr_blocks": [{"cidr_block": c} for c in networks]}
    return {"google_container_cluster": {"gke": cluster}}


def lambda_fn(env: Environment, *, reserved: int | None = 5, auth: str = "AWS_IAM") -> dict[str, dict[str, Raw]]:
    fn: Raw = {"function_name": "f", "package_type": "Image", "tags": tags(env)}
    if reserved is not None:
        fn["reserved_concurrent_executions"] = reserved
    return {"aws_lambda_function": {"fn": fn}, "aws_lambda_function_url": {"url": {"function_name": "f", "authorization_type": auth}}}


def _drop(raw: Raw, rtype: str) -> Raw:
    del raw["resource"][rtype]
    return raw


def _set(rtype: str, name: str, path: str, value: Any) -> Callable[[Raw], Raw]:
    def apply(raw: Raw) -> Raw:
        node = raw["resource"][rtype][name]
        *parents, last = path.split(".")
        for p in parents:
            node = node[p]
        node[last] = value
        return raw

    return apply


def _drop_tag(rtype: str, name: str, attribute: str, key: str) -> Callable[[Raw], Raw]:
    def apply(raw: Raw) -> Raw:
        del raw["resource"][rtype][name][attribute][key]
        return raw

    return apply


Resources = Callable[[Environment], dict[str, dict[str, Raw]]]

# (rule, environment, the clean stack's resources, the one change that violates the rule)
CASES: list[tuple[str, str, Resources, Callable[[Raw], Raw]]] = [
    ("MLP001", "dev", ecr, _drop_tag("aws_ecr_repository", "repo", "tags", "team")),
    ("MLP001", "dev", artifact_registry, _drop_tag("google_artifact_registry_repository", "ar", "labels", "cost-center")),
    ("MLP001", "dev", lambda_fn, _set("aws_lambda_function", "fn", "tags", {})),
    ("MLP002", "dev", eks_gpu, _set("aws_eks_node_group", "gpu", "scaling_config.min_size", 1)),
    ("MLP002", "staging", gke_gpu, _set("google_container_node_pool", "gpu", "autoscaling.min_node_count", 1)),
    (
        "MLP003",
        "production",
        lambda e: {
            **eks_gpu(e, capacity="SPOT"),
            "aws_eks_node_group": {
                **eks_gpu(e)["aws_eks_node_group"],
                **eks_gpu(e, capacity="ON_DEMAND", min_size=1, name="od")["aws_eks_node_group"],
            },
        },
        _set("aws_eks_node_group", "od", "capacity_type", "SPOT"),
    ),
    (
        "MLP004",
        "production",
        lambda e: eks_cluster(e, public=False),
        _set("aws_eks_cluster", "eks", "vpc_config.endpoint_public_access", True),
    ),
    (
        "MLP004",
        "dev",
        lambda e: eks_cluster(e, public=True, cidrs=["203.0.113.0/24"]),
        _set("aws_eks_cluster", "eks", "vpc_config.public_access_cidrs", ["198.51.100.0/24"]),
    ),
    (
        "MLP004",
        "staging",
        lambda e: gke_cluster(e, networks=["10.0.0.0/8"]),
        _set("google_container_cluster", "gke", "master_authorized_networks_config.cidr_blocks", [{"cidr_block": "0.0.0.0/0"}]),
    ),
    ("MLP005", "dev", ecr, _set("aws_ecr_repository", "repo", "image_tag_mutability", "MUTABLE")),
    ("MLP005", "dev", artifact_registry, _set("google_artifact_registry_repository", "ar", "docker_config.immutable_tags", False)),
    ("MLP006", "dev", ecr, _set("aws_ecr_repository", "repo", "image_scanning_configuration.scan_on_push", False)),
    ("MLP006", "dev", artifact_registry, lambda raw: _drop(raw, "google_project_service")),
    ("MLP007", "dev", ecr, lambda raw: _drop(raw, "aws_ecr_lifecycle_policy")),
    ("MLP007", "dev", artifact_registry, _set("google_artifact_registry_repository", "ar", "cleanup_policy_dry_run", True)),
    ("MLP008", "staging", lambda_fn, _set("aws_lambda_function_url", "url", "authorization_type", "NONE")),
    ("MLP009", "dev", lambda_fn, _set("aws_lambda_function", "fn", "reserved_concurrent_executions", -1)),
    ("MLP010", "dev", ecr, lambda raw: _drop(raw, "google_billing_budget")),
    ("MLP010", "production", ecr, _set("aws_budgets_budget", "budget", "notification", [])),
    ("MLP011", "dev", ecr, lambda raw: {**raw, "provider": {"aws": [{"region": "us-east-1", "access_key": "AKIAIOSFODNN7EXAMPLE"}]}}),
    ("MLP011", "dev", lambda_fn, _set("aws_lambda_function", "fn", "environment", {"variables": {"DB_PASSWORD": "hunter2-hunter2"}})),
]


def _context(env: Environment, raw: Raw, *, promoted: bool) -> Context:
    return Context(
        env=env, stacks=[Stack(env.name, Path(f"{env.name}/cdk.tf.json"), raw)], promoted=promoted, production=env.requires_approval
    )


def _failing(env: Environment, raw: Raw) -> set[str]:
    promoted = env.name in ("staging", "production")
    return {rule.id for rule, outcome in evaluate(_context(env, raw, promoted=promoted)) if not outcome.passed}


@pytest.mark.parametrize(("rule_id", "env_name", "clean", "violate"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_rule_fires_alone_on_its_violation_and_passes_clean(
    environments: dict[str, Environment], rule_id: str, env_name: str, clean: Resources, violate: Callable[[Raw], Raw]
) -> None:
    env = environments[env_name]
    raw = with_resources(env, clean(env))
    promoted = env_name in ("staging", "production")
    outcomes = [o for rule, o in evaluate(_context(env, raw, promoted=promoted)) if rule.id == rule_id]
    assert outcomes and all(o.passed for o in outcomes), "the clean stack must be evaluated by the rule and pass it"
    assert _failing(env, raw) == set()
    assert _failing(env, violate(copy.deepcopy(raw))) == {rule_id}


def test_every_rule_has_a_case_an_id_a_severity_and_a_fix() -> None:
    assert {c[0] for c in CASES} == set(RULES)
    for rule in RULES.values():
        assert rule.id.startswith("MLP") and rule.severity in ("CRITICAL", "HIGH", "MEDIUM", "LOW")
        assert rule.fix and "\n" not in rule.fix


def test_provider_default_tags_count_for_aws_resources(environments: dict[str, Environment]) -> None:
    env = environments["dev"]
    raw = with_resources(env, ecr(env))
    del raw["resource"]["aws_ecr_repository"]["repo"]["tags"]
    assert _failing(env, copy.deepcopy(raw)) == {"MLP001"}
    raw["provider"]["aws"][0]["default_tags"] = [{"tags": tags(env)}]
    assert _failing(env, raw) == set()


def test_rules_that_belong_to_other_environments_stay_quiet(environments: dict[str, Environment]) -> None:
    # dev may open its function URL (MLP008 is for promoted environments); production may keep GPUs warm (MLP002 is not for it)
    dev, production = environments["dev"], environments["production"]
    assert _failing(dev, with_resources(dev, lambda_fn(dev, auth="NONE"))) == set()
    assert _failing(production, with_resources(production, eks_gpu(production, min_size=2, capacity="ON_DEMAND"))) == set()


@pytest.mark.parametrize(
    ("node", "found"),
    [
        ({"token": "${data.google_client_config.c.access_token}"}, False),  # a reference, resolved at apply
        ({"encryption_config": {"resources": ["secrets"]}}, False),
        ({"secret_name": "db"}, False),
        ({"api_key": "sk-live-not-a-reference"}, True),
        ({"values": ["-----BEGIN RSA PRIVATE KEY-----\nMIIE..."]}, True),
        ({"script": "curl -H 'Authorization: ghp_" + "a" * 36 + "'"}, True),
        ({"//": {"metadata": {"password": "cdktf metadata is not scanned"}}}, False),
    ],
)
def test_secret_detection(node: Raw, found: bool) -> None:
    hits = list(find_secrets(node))
    assert bool(hits) is found, hits
    for _, what in hits:
        assert "hunter2" not in what and "aaaaaaaa" not in what  # values are masked in reports
