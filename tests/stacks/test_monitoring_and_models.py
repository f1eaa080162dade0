"""Monitoring and the model registry in each environment's synthesized JSON: every Lambda endpoint
and GPU pool has its alarms with the thresholds of its environment file, dashboards cover them,
alerts reach the recipients; the registry buckets are locked down and only the training (and
promotion) roles write while the serving roles read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from environments.schema import Environment
from infra.synthesized.reader import Stack, load_stack

ENVS = ["dev", "staging", "production"]


def _stack(synth_out: Path, name: str) -> Stack:
    return load_stack(synth_out / "stacks" / name / "cdk.tf.json")


def _alarms(stack: Stack) -> dict[str, dict]:  # type: ignore[type-arg]
    return {r.values["alarm_name"]: r.values for r in stack.of_type("aws_cloudwatch_metric_alarm")}


@pytest.mark.parametrize("name", ENVS)
def test_every_endpoint_and_gpu_group_has_its_alarms_with_the_file_thresholds(
    synth_out: Path, environments: dict[str, Environment], name: str
) -> None:
    env = environments[name]
    assert env.aws and env.monitoring and env.aws.cluster
    mon, stack = env.monitoring, _stack(synth_out, name)
    alarms = _alarms(stack)
    topic = stack.of_type("aws_sns_topic")[0]
    assert topic.values["kms_master_key_id"].startswith("${aws_kms_key.")
    subscribed = sorted(r.values["endpoint"] for r in stack.of_type("aws_sns_topic_subscription"))
    assert subscribed == sorted(mon.recipients)
    for ep in env.aws.endpoints:
        fn = env.resource_name(ep.name)
        errors, throttles, latency = alarms[f"{fn}-error-rate"], alarms[f"{fn}-throttles"], alarms[f"{fn}-p99-latency"]
        assert errors["threshold"] == mon.error_rate_pct
        assert {q["id"] for q in errors["metric_query"]} == {"errors", "invocations", "rate"}
        assert next(q for q in errors["metric_query"] if q["id"] == "errors")["metric"]["dimensions"] == {"FunctionName": fn}
        assert throttles["threshold"] == mon.throttles_per_5min and throttles["metric_name"] == "Throttles"
        assert latency["threshold"] == mon.latency_p99_ms and latency["extended_statistic"] == "p99"
    enablers = {r.path.rsplit("-", 1)[-1]: r.values for r in stack.of_type("terraform_data")}
    for group in env.aws.cluster.gpu_node_groups:
        alarm = alarms[f"{env.eks_node_group_name(group.name)}-gpu-at-max"]
        assert alarm["threshold"] == group.max and alarm["evaluation_periods"] == mon.gpu_at_max_minutes
        asg = alarm["dimensions"]["AutoScalingGroupName"]
        assert asg.startswith("${aws_eks_node_group.") and asg.endswith(".resources[0].autoscaling_groups[0].name}")
        # the metric the alarm reads is switched on for that group at apply (EKS leaves it off)
        command = next(v for k, v in enablers.items() if group.name.endswith(k))["provisioner"][0]["local-exec"]["command"]
        assert f"enable-metrics-collection --auto-scaling-group-name {asg}" in command and "GroupInServiceInstances" in command
    not_ready = alarms[f"{env.resource_name('eks')}-nodes-not-ready"]
    assert not_ready["evaluation_periods"] == mon.nodes_not_ready_minutes
    expected = 3 * len(env.aws.endpoints) + len(env.aws.cluster.gpu_node_groups) + 1
    assert len(alarms) == expected
    topic_arn = "${aws_sns_topic." + topic.address.split(".", 1)[1] + ".arn}"
    assert all(a["alarm_actions"] == [topic_arn] for a in alarms.values())
    body = json.loads(stack.of_type("aws_cloudwatch_dashboard")[0].values["dashboard_body"])
    titles = " | ".join(w["properties"]["title"] for w in body["widgets"])
    for ep in env.aws.endpoints:
        assert f"{env.resource_name(ep.name)}: p99 duration" in titles
    for group in env.aws.cluster.gpu_node_groups:
        assert f"{env.eks_node_group_name(group.name)}: GPU nodes in service" in titles


@pytest.mark.parametrize("name", ENVS)
def test_gke_gpu_pools_and_cluster_have_alert_policies_and_a_dashboard(
    synth_out: Path, environments: dict[str, Environment], name: str
) -> None:
    env = environments[name]
    assert env.gcp and env.gcp.cluster and env.monitoring
    stack = _stack(synth_out, name)
    alerts = env.resource_name("alerts")  # the budget has channels of its own
    channels = [c for c in stack.of_type("google_monitoring_notification_channel") if c.values["display_name"].startswith(alerts)]
    assert sorted(c.values["labels"]["email_address"] for c in channels) == sorted(env.monitoring.recipients)
    policies = {p.values["display_name"]: p.values for p in stack.of_type("google_monitoring_alert_policy")}
    for pool in env.gcp.cluster.gpu_node_pools:
        policy = policies[f"{env.gke_gpu_pool_name(pool.name)}: GPU pool at max size"]
        threshold = policy["conditions"][0]["condition_threshold"]
        assert threshold["duration"] == f"{env.monitoring.gpu_at_max_minutes * 60}s"
        assert threshold["threshold_value"] == pool.max * (len(pool.zones) or 3) - 0.5
        assert f'"{env.gke_gpu_pool_name(pool.name)}"' in threshold["filter"]
        assert len(policy["notification_channels"]) == len(env.monitoring.recipients)
    not_ready = policies[f"{env.resource_name('gke')}: node not ready"]["conditions"][0]["condition_threshold"]
    assert not_ready["duration"] == f"{env.monitoring.nodes_not_ready_minutes * 60}s"
    # kubernetes.io/node/status_condition is GAUGE BOOL (Cloud Monitoring, "Kubernetes metrics");
    # ALIGN_MAX takes numeric values only and the policy would be refused at creation (common.proto)
    assert not_ready["aggregations"][0]["per_series_aligner"] == "ALIGN_COUNT_TRUE"
    retention = stack.of_type("google_logging_project_bucket_config")[0].values
    assert (retention["bucket_id"], retention["retention_days"]) == ("_Default", env.monitoring.log_retention_days)
    dashboard = json.loads(stack.of_type("google_monitoring_dashboard")[0].values["dashboard_json"])
    titles = [w["title"] for w in dashboard["gridLayout"]["widgets"]]
    assert all(f"{env.gke_gpu_pool_name(p.name)}: GPU nodes" in titles for p in env.gcp.cluster.gpu_node_pools)


def test_production_alerts_are_stricter_than_dev(environments: dict[str, Environment]) -> None:
    dev, prod = environments["dev"].monitoring, environments["production"].monitoring
    assert dev and prod
    assert prod.latency_p99_ms < dev.latency_p99_ms and prod.error_rate_pct < dev.error_rate_pct
    assert prod.gpu_at_max_minutes < dev.gpu_at_max_minutes and prod.nodes_not_ready_minutes < dev.nodes_not_ready_minutes
    assert environments["production"].models.min_accuracy > environments["dev"].models.min_accuracy  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ENVS)
def test_model_registry_bucket_is_locked_down_and_only_training_writes(
    synth_out: Path, environments: dict[str, Environment], name: str
) -> None:
    env = environments[name]
    assert env.aws and env.models
    stack = _stack(synth_out, name)
    bucket = next(b for b in stack.of_type("aws_s3_bucket") if b.values["bucket"] == env.model_bucket("aws"))
    ref = f"${{aws_s3_bucket.{bucket.address.split('.', 1)[1]}.id}}"

    def attached(rtype: str) -> dict:  # type: ignore[type-arg]
        return next(r.values for r in stack.of_type(rtype) if r.values["bucket"] == ref)

    assert attached("aws_s3_bucket_versioning")["versioning_configuration"]["status"] == "Enabled"
    sse = attached("aws_s3_bucket_server_side_encryption_configuration")["rule"][0]["apply_server_side_encryption_by_default"]
    assert sse["sse_algorithm"] == "aws:kms" and sse["kms_master_key_id"].startswith("${aws_kms_key.")
    pab = attached("aws_s3_bucket_public_access_block")
    assert all(pab[k] for k in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"))
    rules = {r["id"]: r for r in attached("aws_s3_bucket_lifecycle_configuration")["rule"]}
    assert rules["history"]["noncurrent_version_expiration"][0]["noncurrent_days"] == env.models.keep_noncurrent_days
    policy = json.loads(attached("aws_s3_bucket_policy")["policy"])
    statements = {s.get("Sid"): s for s in policy["Statement"]}
    assert statements["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    writers = statements["OnlyTrainingAndPromotionWrite"]["Condition"]["StringNotEqualsIfExists"]["aws:PrincipalArn"]
    assert writers == [
        f"arn:aws:iam::{env.aws.account_id}:role/{env.resource_name('training')}",
        f"arn:aws:iam::{env.aws.account_id}:role/{env.github_role_name('deploy')}",
    ]
    # serving roles read, never write: the Lambda roles and the pods' role
    readers = [r for r in stack.of_type("aws_iam_role_policy") if "ReadModel" in r.values["policy"]]
    assert len(readers) == len(env.aws.endpoints) + 1
    for r in readers:
        for st in json.loads(r.values["policy"])["Statement"]:
            assert not any(
                a in ("s3:PutObject", "s3:DeleteObject") for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])
            )
    functions = stack.of_type("aws_lambda_function")
    for fn in functions:
        variables = fn.values["environment"]["variables"]
        assert variables["MODEL_REGISTRY_URI"] == f"s3://{env.model_bucket('aws')}/models/{env.models.name}"
        assert variables["MODEL_ALIAS"] == env.models.alias
    replicas = stack.of_type("aws_s3_bucket_replication_configuration")
    assert len(replicas) == (1 if env.models.replica_region else 0)
    gcs = next(b for b in stack.of_type("google_storage_bucket") if b.values["name"] == env.model_bucket("gcp"))
    assert gcs.values["versioning"]["enabled"] and gcs.values["uniform_bucket_level_access"]
    assert gcs.values["public_access_prevention"] == "enforced"
    assert gcs.values["soft_delete_policy"]["retention_duration_seconds"] == env.models.gcs_retention_days * 86400
    members = {(m.values["role"], m.values["member"]) for m in stack.of_type("google_storage_bucket_iam_member")}
    assert any(role == "roles/storage.objectViewer" and "serving" in member for role, member in members)
    assert not any(role == "roles/storage.objectCreator" and "serving" in member for role, member in members)


@pytest.mark.parametrize(("name", "reader_env"), [("dev", "staging"), ("staging", "production"), ("production", None)])
def test_the_next_environment_may_read_the_models_it_promotes(
    synth_out: Path, environments: dict[str, Environment], name: str, reader_env: str | None
) -> None:
    env, stack = environments[name], _stack(synth_out, name)
    policy = next(
        json.loads(p.values["policy"])
        for p in stack.of_type("aws_s3_bucket_policy")
        if "OnlyTrainingAndPromotionWrite" in p.values["policy"]
    )
    reads = [s for s in policy["Statement"] if s.get("Sid") == "PromotionReads"]
    key_policy = json.loads(stack.of_type("aws_kms_key")[0].values["policy"])
    decrypts = [s for s in key_policy["Statement"] if s.get("Sid") == "PromotionDecryptsModels"]
    if reader_env is None:
        assert reads == [] and decrypts == []
        return
    reader = environments[reader_env].github_role_arn("deploy")
    assert reader is not None
    # the other account is the principal and the role an ARN condition: a policy naming a role that does
    # not exist yet is rejected ("Invalid principal in policy" / MalformedPolicyDocumentException)
    account_root = {"AWS": f"arn:aws:iam::{reader.split(':')[4]}:root"}
    assert reads[0]["Principal"] == account_root and set(reads[0]["Action"]) == {"s3:GetObject", "s3:ListBucket"}
    assert reads[0]["Condition"] == {"ArnEquals": {"aws:PrincipalArn": reader}}
    assert decrypts[0]["Principal"] == account_root and decrypts[0]["Action"] == "kms:Decrypt"
    assert decrypts[0]["Condition"] == {
        "ArnEquals": {"aws:PrincipalArn": reader},
        "StringEquals": {"kms:ViaService": f"s3.{env.aws.region}.amazonaws.com"},  # type: ignore[union-attr]
    }


@pytest.mark.parametrize("name", ENVS)
def test_the_served_workload_loads_its_alias_into_a_scratch_volume(environments: dict[str, Environment], name: str) -> None:
    from app.k8s import deployment
    from stacks.serving import workload_spec

    env = environments[name]
    for cloud in env.cluster_clouds():
        pod = deployment(workload_spec(env, cloud))["spec"]["template"]["spec"]
        container = pod["containers"][0]
        variables = {e["name"]: e["value"] for e in container["env"]}
        scheme = "s3" if cloud == "aws" else "gs"
        assert variables["MODEL_REGISTRY_URI"] == f"{scheme}://{env.model_bucket(cloud)}/models/{env.models.name}"  # type: ignore[union-attr]
        assert variables["MODEL_ALIAS"] == env.models.alias  # type: ignore[union-attr]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["volumeMounts"] == [{"name": "model-cache", "mountPath": variables["MODEL_CACHE"]}]
        assert pod["volumes"] == [{"name": "model-cache", "emptyDir": {"sizeLimit": "1Gi"}}]


@pytest.mark.parametrize("name", ENVS)
def test_only_train_yml_on_the_default_branch_assumes_the_training_role(
    synth_out: Path, environments: dict[str, Environment], name: str
) -> None:
    env = environments[name]
    assert env.aws and env.ci
    stack = _stack(synth_out, name)
    role = next(r for r in stack.of_type("aws_iam_role") if r.values["name"] == env.resource_name("training"))
    github = [s for s in json.loads(role.values["assume_role_policy"])["Statement"] if "Federated" in s["Principal"]]
    assert len(github) == 1
    subject = github[0]["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]
    repo, default = env.ci.repository, env.ci.default_branch
    assert subject == f"repo:{repo}:ref:refs/heads/{default}:job_workflow_ref:{repo}/.github/workflows/train.yml@refs/heads/{default}"
    # no wildcard: another workflow, branch or a pull request gets another sub and is refused
    assert "*" not in subject and "StringLike" not in github[0]["Condition"]


@pytest.mark.parametrize("name", ENVS)
def test_a_registered_version_cannot_be_replaced_or_deleted_while_aliases_move(
    synth_out: Path, environments: dict[str, Environment], name: str
) -> None:
    env = environments[name]
    assert env.aws and env.gcp and env.models
    stack = _stack(synth_out, name)
    bucket = next(b for b in stack.of_type("aws_s3_bucket") if b.values["bucket"] == env.model_bucket("aws"))
    ref = f"${{aws_s3_bucket.{bucket.address.split('.', 1)[1]}.id}}"
    policy = next(json.loads(p.values["policy"]) for p in stack.of_type("aws_s3_bucket_policy") if p.values["bucket"] == ref)
    statements = {s.get("Sid"): s for s in policy["Statement"]}
    once, never = statements["VersionsAreWrittenOnce"], statements["VersionsAreNeverDeleted"]
    movable = {f"arn:aws:s3:::{env.model_bucket('aws')}/models/*/aliases/*", f"arn:aws:s3:::{env.model_bucket('aws')}/access-logs/*"}
    for st in (once, never):
        assert st["Effect"] == "Deny" and st["Principal"] == "*" and set(st["NotResource"]) == movable
    assert once["Action"] == "s3:PutObject" and once["Condition"] == {"Null": {"s3:if-none-match": "true"}}
    assert set(never["Action"]) == {"s3:DeleteObject", "s3:DeleteObjectVersion"} and "Condition" not in never
    # GCS: the writers create objects; they replace only under aliases/ (a conditional grant)
    grants = [
        m.values
        for m in stack.of_type("google_storage_bucket_iam_member")
        if "training" in m.values["member"] or "deploy" in m.values["member"]
    ]
    replacing = [g for g in grants if g["role"] not in ("roles/storage.objectCreator", "roles/storage.objectViewer")]
    assert len(replacing) == 2
    prefix = f"projects/_/buckets/{env.model_bucket('gcp')}/objects/models/{env.models.name}/aliases/"
    for g in replacing:
        assert g["role"] == "roles/storage.objectUser"
        assert g["condition"]["expression"] == f'resource.name.startsWith("{prefix}")'


def test_the_error_rate_alarm_uses_metric_math_cloudwatch_documents(synth_out: Path) -> None:
    """IF(condition, a, b) is documented metric math ("Using metric math", IF expression); a constant
    inside an array (MAX([m, 1])) is not a time series and may be refused by PutMetricAlarm."""
    stack = _stack(synth_out, "staging")
    rates = [q for a in _alarms(stack).values() for q in a.get("metric_query", []) if q.get("id") == "rate"]
    assert rates and all(q["expression"] == "IF(invocations > 0, 100 * errors / invocations, 0)" for q in rates)
