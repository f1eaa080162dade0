"""AWS constructs, each synthesized alone with cdktf's Testing helpers."""

from __future__ import annotations

import json

import pytest
from cdktf import TerraformStack

from environments.schema import EksGpuNodeGroup, Environment
from stacks.aws.budget import Budget as AwsBudget
from stacks.aws.cluster import Cluster
from stacks.aws.endpoints import Endpoint
from stacks.aws.kms import EnvironmentKey
from stacks.aws.network import Network
from stacks.aws.node_groups import GpuNodeGroup, NodeRole
from stacks.aws.registry import Registry, repository_arn
from stacks.state import configure_backend
from tests.stacks.helpers import one, resources, synth_construct


def _gpu_group(stack: TerraformStack, env: Environment, cfg: EksGpuNodeGroup) -> None:
    key = EnvironmentKey(stack, "kms", env=env)
    network = Network(stack, "net", env=env, key=key)
    cluster = Cluster(stack, "eks", env=env, network=network, key=key)
    GpuNodeGroup(stack, "gpu", env=env, cluster=cluster.cluster, role=NodeRole(stack, "role", env=env), network=network, cfg=cfg)


def _gpu_node_group(synth: dict, name: str) -> dict:  # type: ignore[type-arg]
    return next(g for g in resources(synth, "aws_eks_node_group") if g["node_group_name"] == name)


def test_gpu_node_group_scales_from_zero_with_nvidia_ami_taints_and_labels(environments: dict[str, Environment]) -> None:
    env = environments["dev"]
    assert env.aws and env.aws.cluster
    cfg = env.aws.cluster.gpu_node_groups[0]
    synth = synth_construct(lambda s: _gpu_group(s, env, cfg))

    group = _gpu_node_group(synth, "mlp-dev-ng-l4")
    assert group["ami_type"] == "AL2023_x86_64_NVIDIA"
    assert group["capacity_type"] == "SPOT"
    assert group["scaling_config"] == {"min_size": 0, "desired_size": 0, "max_size": 2}
    assert group["taint"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
    assert group["labels"]["workload"] == "inference"
    assert group["labels"]["nvidia.com/gpu.present"] == "true"
    assert group["labels"]["k8s.amazonaws.com/accelerator"] == "nvidia-l4"
    assert group["lifecycle"]["ignore_changes"] == ["scaling_config[0].desired_size"]

    asg_tags = {t["tag"]["key"]: t["tag"]["value"] for t in resources(synth, "aws_autoscaling_group_tag")}
    template = "k8s.io/cluster-autoscaler/node-template"
    assert asg_tags[f"{template}/resources/nvidia.com/gpu"] == "1"
    assert asg_tags[f"{template}/taint/nvidia.com/gpu"] == "present:NoSchedule"
    assert asg_tags[f"{template}/label/eks.amazonaws.com/capacityType"] == "SPOT"
    assert all(".autoscaling_groups[0].name}" in t["autoscaling_group_name"] for t in resources(synth, "aws_autoscaling_group_tag"))
    assert group["tags"][f"{template}/resources/nvidia.com/gpu"] == "1"


def test_gpu_launch_template_requires_imdsv2_and_encrypts_the_disk(environments: dict[str, Environment]) -> None:
    env = environments["dev"]
    assert env.aws and env.aws.cluster
    synth = synth_construct(lambda s: _gpu_group(s, env, env.aws.cluster.gpu_node_groups[0]))  # type: ignore[union-attr]
    template = next(t for t in resources(synth, "aws_launch_template") if t["name"] == "mlp-dev-ng-l4")
    assert template["metadata_options"]["http_tokens"] == "required"
    ebs = template["block_device_mappings"][0]["ebs"]
    assert (ebs["volume_size"], ebs["volume_type"], ebs["encrypted"]) == (100, "gp3", "true")


@pytest.mark.parametrize(
    ("instance", "ami", "expected"),
    [("g5g.xlarge", None, "AL2023_ARM_64_NVIDIA"), ("g6e.xlarge", "BOTTLEROCKET_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA")],
)
def test_gpu_ami_type_follows_architecture_or_declaration(
    environments: dict[str, Environment], instance: str, ami: str | None, expected: str
) -> None:
    env = environments["dev"]
    assert env.aws and env.aws.cluster
    cfg = env.aws.cluster.gpu_node_groups[0].model_copy(update={"instance_types": [instance], "ami_type": ami})
    synth = synth_construct(lambda s: _gpu_group(s, env, cfg))
    assert _gpu_node_group(synth, "mlp-dev-ng-l4")["ami_type"] == expected


def test_cluster_endpoint_private_in_staging_restricted_in_dev(environments: dict[str, Environment]) -> None:
    for name, public, cidrs in [("staging", False, None), ("dev", True, ["203.0.113.0/24"])]:
        env = environments[name]

        def build(s: TerraformStack, env: Environment = env) -> None:
            key = EnvironmentKey(s, "kms", env=env)
            Cluster(s, "eks", env=env, network=Network(s, "net", env=env, key=key), key=key)

        cluster = one(synth_construct(build), "aws_eks_cluster")
        vpc = cluster["vpc_config"]
        assert vpc["endpoint_private_access"] is True
        assert vpc["endpoint_public_access"] is public
        assert vpc.get("public_access_cidrs") == cidrs
        assert cluster["encryption_config"]["resources"] == ["secrets"]
        assert set(cluster["enabled_cluster_log_types"]) == {"api", "audit", "authenticator", "controllerManager", "scheduler"}


def test_nat_per_az_versus_single(environments: dict[str, Environment]) -> None:
    for name in ("dev", "production"):
        env = environments[name]
        assert env.aws
        expected = len(env.aws.network.zones) if env.aws.network.nat == "per_az" else 1
        synth = synth_construct(lambda s, env=env: Network(s, "net", env=env, key=EnvironmentKey(s, "kms", env=env)))
        assert len(resources(synth, "aws_nat_gateway")) == expected
        assert len(resources(synth, "aws_subnet")) == 2 * len(env.aws.network.zones)
        # zones are named in the environment file, not read from a data source that grows (CKV_AWS_394)
        assert sorted({s["availability_zone"] for s in resources(synth, "aws_subnet")}) == sorted(env.aws.network.zones)
        assert "data" not in synth
        assert len(resources(synth, "aws_flow_log")) == 1


def test_registry_is_immutable_scanned_encrypted_with_lifecycle(environments: dict[str, Environment]) -> None:
    env = environments["staging"]
    assert env.aws
    cfg = env.aws.registries[0]
    reader = "arn:aws:iam::333333333333:role/mlp-production-github-deploy"

    def build(s: TerraformStack) -> None:
        key = EnvironmentKey(s, "kms", env=env)
        Registry(s, "ecr", env=env, cfg=cfg, key_arn=key.arn, lambda_pulls=True, promotion_reader=reader)

    synth = synth_construct(build)
    repo = one(synth, "aws_ecr_repository")
    assert repo["image_tag_mutability"] == "IMMUTABLE"
    assert repo["image_scanning_configuration"]["scan_on_push"] is True
    assert repo["encryption_configuration"][0]["encryption_type"] == "KMS"
    rules = json.loads(one(synth, "aws_ecr_lifecycle_policy")["policy"])["rules"]
    assert rules[-1]["selection"] == {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": cfg.keep_last}
    assert one(synth, "aws_kms_key")["enable_key_rotation"] is True
    statements = {st["Sid"]: st for st in json.loads(one(synth, "aws_ecr_repository_policy")["policy"])["Statement"]}
    # Lambda pulls with its service principal, only for this environment's functions
    assert statements["LambdaPulls"]["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert (
        statements["LambdaPulls"]["Condition"]["StringLike"]["aws:sourceArn"]
        == "arn:aws:lambda:us-east-1:222222222222:function:mlp-staging-*"
    )
    # the next environment's deploy role, by account and ARN condition (it may not exist yet)
    assert statements["PromotionPulls"]["Principal"] == {"AWS": "arn:aws:iam::333333333333:root"}
    assert statements["PromotionPulls"]["Condition"] == {"ArnEquals": {"aws:PrincipalArn": reader}}


@pytest.mark.parametrize(("name", "auth"), [("dev", "NONE"), ("production", "AWS_IAM")])
def test_lambda_endpoint_image_url_logs_and_scoped_role(environments: dict[str, Environment], name: str, auth: str) -> None:
    env = environments[name]
    assert env.aws
    cfg = env.aws.endpoints[0]

    def build(s: TerraformStack) -> None:
        key = EnvironmentKey(s, "kms", env=env)
        Endpoint(
            s,
            "ep",
            env=env,
            cfg=cfg,
            repository_url=env.image_repository("aws", cfg.repository),
            repository_arn=repository_arn(env, cfg.repository),
            network=Network(s, "net", env=env, key=key),
            key=key,
        )

    synth = synth_construct(build)
    fn = one(synth, "aws_lambda_function")
    assert fn["package_type"] == "Image"
    assert fn["image_uri"] == f"{env.aws.account_id}.dkr.ecr.us-east-1.amazonaws.com/mlp-{name}-model-server:{cfg.image_tag}"
    assert fn["reserved_concurrent_executions"] == cfg.reserved_concurrency
    assert fn["architectures"] == [cfg.architecture]
    assert fn["vpc_config"]["subnet_ids"]
    assert one(synth, "aws_lambda_function_url")["authorization_type"] == auth
    log_group = next(g for g in resources(synth, "aws_cloudwatch_log_group") if g["name"] == f"/aws/lambda/mlp-{name}-predict")
    assert log_group["retention_in_days"] == cfg.log_retention_days
    inline = next(p for p in resources(synth, "aws_iam_role_policy") if "WriteOwnLogs" in p["policy"])
    statements = {st["Sid"]: st for st in json.loads(inline["policy"])["Statement"]}
    assert statements["WriteOwnLogs"]["Resource"] == [
        "${" + next(iter(synth["resource"]["aws_cloudwatch_log_group"])).join(["aws_cloudwatch_log_group.", ""]) + ".arn}:*"
    ]
    assert statements["PullOwnImage"]["Resource"] == [f"arn:aws:ecr:us-east-1:{env.aws.account_id}:repository/mlp-{name}-model-server"]
    # failed asynchronous invocations land in an encrypted queue only this function may write to
    queue_ref = "${aws_sqs_queue." + next(iter(synth["resource"]["aws_sqs_queue"])) + ".arn}"
    assert fn["dead_letter_config"]["target_arn"] == queue_ref
    assert statements["DeadLetters"] == {"Sid": "DeadLetters", "Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": [queue_ref]}
    key_ref = "${aws_kms_key." + next(iter(synth["resource"]["aws_kms_key"])) + ".arn}"
    assert fn["kms_key_arn"] == key_ref
    assert one(synth, "aws_sqs_queue")["kms_master_key_id"] == key_ref


@pytest.mark.parametrize("name", ["dev", "production"])
def test_aws_budget_alerts_at_each_threshold_and_on_forecast(environments: dict[str, Environment], name: str) -> None:
    env = environments[name]
    budget = one(synth_construct(lambda s: AwsBudget(s, "budget", env=env)), "aws_budgets_budget")
    assert (budget["budget_type"], budget["time_unit"], budget["limit_unit"]) == ("COST", "MONTHLY", "USD")
    assert float(budget["limit_amount"]) == env.budget_usd("aws")
    alerts = [(n["notification_type"], n["threshold"]) for n in budget["notification"]]
    assert alerts == [("ACTUAL", p) for p in env.budget.thresholds_pct] + [("FORECASTED", 100)]
    assert all(n["subscriber_email_addresses"] == env.budget.recipients for n in budget["notification"])


def test_s3_backend_is_encrypted_with_native_lock(environments: dict[str, Environment]) -> None:
    env = environments["production"]
    synth = synth_construct(lambda s: configure_backend(s, env))
    backend = synth["terraform"]["backend"]["s3"]
    assert backend == {
        "bucket": "mlp-tfstate-333333333333",
        "key": "mlp/production/terraform.tfstate",
        "region": "us-east-1",
        "encrypt": True,
        # the state key bootstrap makes: without it, encrypt = true writes SSE-S3 (AES256)
        "kms_key_id": "arn:aws:kms:us-east-1:333333333333:alias/mlp-production-tfstate",
        "use_lockfile": True,
    }
    from infra.bootstrap.policies import state_alias_arn

    assert backend["kms_key_id"] == state_alias_arn(env) == f"arn:aws:kms:us-east-1:333333333333:{env.state_key_alias}"


def test_gcs_backend_when_declared(environments: dict[str, Environment]) -> None:
    env = environments["dev"]
    gcs_env = env.model_copy(update={"state": env.state.model_copy(update={"backend": "gcs", "bucket": "mlp-dev-tfstate"})})
    synth = synth_construct(lambda s: configure_backend(s, gcs_env))
    assert synth["terraform"]["backend"] == {"gcs": {"bucket": "mlp-dev-tfstate", "prefix": "mlp/dev/terraform"}}
