"""Monitoring as code on AWS: an alert topic to the environment's recipients, CloudWatch alarms on
the Lambda endpoints and the EKS GPU node groups, Container Insights for the cluster, a dashboard.

Thresholds come from the environment file's ``monitoring`` section (docs/monitoring.md):
* each Lambda endpoint: error rate (Errors / Invocations, metric math) above ``error_rate_pct``,
  throttles above ``throttles_per_5min``, p99 duration above ``latency_p99_ms``;
* each GPU node group: in-service instances of its Auto Scaling group at the group's max size for
  ``gpu_at_max_minutes`` (capacity exhausted: requests queue); the group's metrics collection is
  switched on at apply (EKS leaves it off);
* the cluster: a node not ready (Container Insights ``cluster_failed_node_count``) for
  ``nodes_not_ready_minutes``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cdktf import TerraformResource
from cdktf_cdktf_provider_aws.cloudwatch_dashboard import CloudwatchDashboard
from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import CloudwatchMetricAlarm, CloudwatchMetricAlarmMetricQuery
from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import CloudwatchMetricAlarmMetricQueryMetric as QueryMetric
from cdktf_cdktf_provider_aws.eks_addon import EksAddon, EksAddonPodIdentityAssociation
from cdktf_cdktf_provider_aws.eks_cluster import EksCluster
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from cdktf_cdktf_provider_aws.sns_topic_subscription import SnsTopicSubscription
from constructs import Construct

from environments.schema import Environment
from stacks.aws.iam import assume_role_policy, managed_policy
from stacks.aws.kms import EnvironmentKey

PERIOD = 60  # seconds per datapoint of the minute-based alarms


@dataclass(frozen=True)
class GpuGroup:
    key: str  # its name in the environment file (construct ids use it, so environments line up)
    name: str  # the node group's name (EKS)
    asg_name: str  # its Auto Scaling group (a reference until applied)
    max_size: int


@dataclass(frozen=True)
class Function:
    key: str  # the endpoint's name in the environment file
    name: str  # the function's name


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        env: Environment,
        key: EnvironmentKey,
        cluster: EksCluster | None,
        cluster_name: str | None,
        after: list[TerraformResource],
        gpu_groups: list[GpuGroup],
        functions: list[Function],
    ) -> None:
        super().__init__(scope, id_)
        assert env.aws is not None and env.monitoring is not None
        mon = env.monitoring
        self.topic = SnsTopic(self, "topic", name=env.resource_name("alerts"), kms_master_key_id=key.arn)
        for i, email in enumerate(mon.recipients):
            SnsTopicSubscription(self, f"recipient-{i}", topic_arn=self.topic.arn, protocol="email", endpoint=email)
        self.actions = [self.topic.arn]
        for fn in functions:
            self._function_alarms(env, fn)
        for group in gpu_groups:
            self._group_metrics(group)
            self._alarm(
                f"gpu-at-max-{group.key}",
                alarm_name=f"{group.name}-gpu-at-max",
                alarm_description=f"GPU node group {group.name} has run at its max size ({group.max_size}) for "
                f"{mon.gpu_at_max_minutes} minutes: raise max or add capacity",
                namespace="AWS/AutoScaling",
                metric_name="GroupInServiceInstances",
                dimensions={"AutoScalingGroupName": group.asg_name},
                statistic="Minimum",
                period=PERIOD,
                evaluation_periods=mon.gpu_at_max_minutes,
                threshold=group.max_size,
                comparison_operator="GreaterThanOrEqualToThreshold",
            )
        if cluster is not None and cluster_name is not None:
            self._container_insights(env, cluster, after)
            self._alarm(
                "nodes-not-ready",
                alarm_name=f"{cluster_name}-nodes-not-ready",
                alarm_description=f"A node of {cluster_name} has not been ready for {mon.nodes_not_ready_minutes} minutes",
                namespace="ContainerInsights",
                metric_name="cluster_failed_node_count",
                dimensions={"ClusterName": cluster_name},
                statistic="Minimum",
                period=PERIOD,
                evaluation_periods=mon.nodes_not_ready_minutes,
                threshold=0,
                comparison_operator="GreaterThanThreshold",
            )
        CloudwatchDashboard(
            self,
            "dashboard",
            dashboard_name=env.resource_name("overview"),
            dashboard_body=json.dumps(dashboard(env, cluster_name, gpu_groups, functions), sort_keys=True),
        )

    def _group_metrics(self, group: GpuGroup) -> None:
        """EKS does not turn on group metrics for a managed node group's Auto Scaling group, and no
        Terraform resource can for a group it does not own: a `terraform_data` runs the AWS CLI (on
        the runner that applies) once per group, again when the group is replaced."""
        data = TerraformResource(self, f"group-metrics-{group.key}", terraform_resource_type="terraform_data")
        data.add_override("triggers_replace", [group.asg_name])
        command = (
            f"aws autoscaling enable-metrics-collection --auto-scaling-group-name {group.asg_name} --granularity 1Minute "
            "--metrics GroupInServiceInstances GroupDesiredCapacity GroupMaxSize"
        )
        data.add_override("provisioner", [{"local-exec": {"command": command}}])

    def _alarm(self, id_: str, **kwargs: Any) -> CloudwatchMetricAlarm:
        """An alarm that notifies the topic when it fires and when it clears; missing data (no
        traffic, no nodes) is not breaching."""
        return CloudwatchMetricAlarm(
            self, id_, treat_missing_data="notBreaching", alarm_actions=self.actions, ok_actions=self.actions, **kwargs
        )

    def _function_alarms(self, env: Environment, fn: Function) -> None:
        assert env.monitoring is not None
        mon = env.monitoring
        dims = {"FunctionName": fn.name}
        self._alarm(
            f"errors-{fn.key}",
            alarm_name=f"{fn.name}-error-rate",
            alarm_description=f"{fn.name}: more than {mon.error_rate_pct:g}% of invocations failed over 5 minutes",
            metric_query=[
                CloudwatchMetricAlarmMetricQuery(
                    id="errors",
                    metric=QueryMetric(namespace="AWS/Lambda", metric_name="Errors", dimensions=dims, period=300, stat="Sum"),
                    return_data=False,
                ),
                CloudwatchMetricAlarmMetricQuery(
                    id="invocations",
                    metric=QueryMetric(namespace="AWS/Lambda", metric_name="Invocations", dimensions=dims, period=300, stat="Sum"),
                    return_data=False,
                ),
                CloudwatchMetricAlarmMetricQuery(
                    id="rate", expression="IF(invocations > 0, 100 * errors / invocations, 0)", label="error rate (%)", return_data=True
                ),
            ],
            evaluation_periods=1,
            threshold=mon.error_rate_pct,
            comparison_operator="GreaterThanThreshold",
        )
        self._alarm(
            f"throttles-{fn.key}",
            alarm_name=f"{fn.name}-throttles",
            alarm_description=f"{fn.name}: more than {mon.throttles_per_5min} throttled invocations in 5 minutes (reserved concurrency)",
            namespace="AWS/Lambda",
            metric_name="Throttles",
            dimensions=dims,
            statistic="Sum",
            period=300,
            evaluation_periods=1,
            threshold=mon.throttles_per_5min,
            comparison_operator="GreaterThanThreshold",
        )
        self._alarm(
            f"latency-{fn.key}",
            alarm_name=f"{fn.name}-p99-latency",
            alarm_description=f"{fn.name}: p99 duration above the {mon.latency_p99_ms} ms objective for 3 of 5 minutes",
            namespace="AWS/Lambda",
            metric_name="Duration",
            dimensions=dims,
            extended_statistic="p99",
            period=PERIOD,
            evaluation_periods=5,
            datapoints_to_alarm=3,
            threshold=mon.latency_p99_ms,
            comparison_operator="GreaterThanThreshold",
        )

    def _container_insights(self, env: Environment, cluster: EksCluster, after: list[TerraformResource]) -> None:
        """The CloudWatch observability add-on (Container Insights metrics), its agent's role by Pod Identity."""
        role = IamRole(
            self,
            "insights-role",
            name=env.resource_name("container-insights"),
            assume_role_policy=assume_role_policy("pods.eks.amazonaws.com", extra_actions=("sts:TagSession",)),
        )
        IamRolePolicyAttachment(self, "insights-policy", role=role.name, policy_arn=managed_policy("CloudWatchAgentServerPolicy"))
        EksAddon(
            self,
            "insights",
            cluster_name=cluster.name,
            addon_name="amazon-cloudwatch-observability",
            pod_identity_association=[EksAddonPodIdentityAssociation(role_arn=role.arn, service_account="cloudwatch-agent")],
            # without nodes the add-on stays DEGRADED until its create timeout (provider eks/addon.go waiter)
            depends_on=after,
        )


def dashboard(env: Environment, cluster_name: str | None, gpu_groups: list[GpuGroup], functions: list[Function]) -> dict[str, Any]:
    """The environment's CloudWatch dashboard: one row per endpoint, one per GPU node group, the cluster."""
    assert env.aws is not None and env.monitoring is not None
    region, mon = env.aws.region, env.monitoring
    widgets: list[dict[str, Any]] = []
    y = 0

    def widget(title: str, metrics: list[list[Any]], x: int, annotation: tuple[str, float] | None = None) -> dict[str, Any]:
        props: dict[str, Any] = {"title": title, "region": region, "metrics": metrics, "view": "timeSeries", "period": 60}
        if annotation:
            props["annotations"] = {"horizontal": [{"label": annotation[0], "value": annotation[1]}]}
        return {"type": "metric", "x": x, "y": y, "width": 8, "height": 6, "properties": props}

    for fn in functions:
        widgets += [
            widget(f"{fn.name}: invocations and errors", [["AWS/Lambda", "Invocations", "FunctionName", fn.name, {"stat": "Sum"}],
                                                          ["AWS/Lambda", "Errors", "FunctionName", fn.name, {"stat": "Sum"}]], 0),
            widget(f"{fn.name}: p99 duration (ms)", [["AWS/Lambda", "Duration", "FunctionName", fn.name, {"stat": "p99"}]], 8,
                   ("objective", mon.latency_p99_ms)),
            widget(f"{fn.name}: throttles", [["AWS/Lambda", "Throttles", "FunctionName", fn.name, {"stat": "Sum"}]], 16,
                   ("alarm", mon.throttles_per_5min)),
        ]  # fmt: skip
        y += 6
    for group in gpu_groups:
        widgets.append(
            widget(f"{group.name}: GPU nodes in service", [["AWS/AutoScaling", "GroupInServiceInstances", "AutoScalingGroupName", group.asg_name]],
                   0, ("max size", group.max_size))
        )  # fmt: skip
        y += 6
    if cluster_name:
        widgets.append(
            widget(f"{cluster_name}: nodes", [["ContainerInsights", "cluster_node_count", "ClusterName", cluster_name],
                                              ["ContainerInsights", "cluster_failed_node_count", "ClusterName", cluster_name]], 0)
        )  # fmt: skip
    return {"widgets": widgets}
