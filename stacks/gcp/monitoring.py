"""Monitoring as code on GCP: an e-mail notification channel per recipient, alert policies for the
GKE GPU pools (a pool at its max size for ``gpu_at_max_minutes``) and the cluster (a node not ready
for ``nodes_not_ready_minutes``; serving containers restarting), the retention of the project's
``_Default`` log bucket, and a Cloud Monitoring dashboard built from the environment.

Metric names and filters: cloud.google.com/monitoring/api/metrics_kubernetes (read 2026-11-26).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cdktf_cdktf_provider_google.logging_project_bucket_config import LoggingProjectBucketConfig
from cdktf_cdktf_provider_google.monitoring_alert_policy import (
    MonitoringAlertPolicy,
    MonitoringAlertPolicyConditions,
    MonitoringAlertPolicyConditionsConditionThreshold,
    MonitoringAlertPolicyConditionsConditionThresholdAggregations,
    MonitoringAlertPolicyDocumentation,
)
from cdktf_cdktf_provider_google.monitoring_dashboard import MonitoringDashboard
from cdktf_cdktf_provider_google.monitoring_notification_channel import MonitoringNotificationChannel
from constructs import Construct

from app.layout import SERVING_NAMESPACE
from environments.schema import Environment


@dataclass(frozen=True)
class GpuPool:
    key: str  # its name in the environment file (construct ids use it, so environments line up)
    name: str  # the GKE node pool's name
    max_nodes: int  # per zone (GKE autoscaling counts per zone)
    zones: int


def node_count_filter(cluster: str, pool: str | None = None) -> str:
    f = f'metric.type="kubernetes.io/node/cpu/allocatable_cores" resource.type="k8s_node" resource.label."cluster_name"="{cluster}"'
    return f + (f' metadata.system_labels."node_pool"="{pool}"' if pool else "")


class Monitoring(Construct):
    def __init__(self, scope: Construct, id_: str, *, env: Environment, cluster_name: str | None, gpu_pools: list[GpuPool]) -> None:
        super().__init__(scope, id_)
        assert env.gcp is not None and env.monitoring is not None
        mon = env.monitoring
        channels = [
            MonitoringNotificationChannel(
                self,
                f"recipient-{i}",
                display_name=f"{env.resource_name('alerts')}: {email}",
                type="email",
                labels={"email_address": email},
            ).id
            for i, email in enumerate(mon.recipients)
        ]
        LoggingProjectBucketConfig(
            self,
            "log-retention",
            project=env.gcp.project_id,
            location="global",
            bucket_id="_Default",
            retention_days=mon.log_retention_days,
        )
        labels = {k.replace("-", "_"): v for k, v in env.all_tags.items()}
        for pool in gpu_pools:
            MonitoringAlertPolicy(
                self,
                f"gpu-at-max-{pool.key}",
                display_name=f"{pool.name}: GPU pool at max size",
                combiner="OR",
                notification_channels=channels,
                user_labels=labels,
                documentation=MonitoringAlertPolicyDocumentation(
                    content=f"GPU pool {pool.name} has run at its max size ({pool.max_nodes} per zone × {pool.zones}) for "
                    f"{mon.gpu_at_max_minutes} minutes: raise max or add zones.",
                    mime_type="text/markdown",
                ),
                conditions=[
                    MonitoringAlertPolicyConditions(
                        display_name="nodes in the pool >= max",
                        condition_threshold=MonitoringAlertPolicyConditionsConditionThreshold(
                            filter=node_count_filter(cluster_name or "", pool.name),
                            comparison="COMPARISON_GT",
                            threshold_value=pool.max_nodes * pool.zones - 0.5,
                            duration=f"{mon.gpu_at_max_minutes * 60}s",
                            aggregations=[
                                MonitoringAlertPolicyConditionsConditionThresholdAggregations(
                                    alignment_period="60s", per_series_aligner="ALIGN_MEAN", cross_series_reducer="REDUCE_COUNT"
                                )
                            ],
                        ),
                    )
                ],
            )
        if cluster_name:
            MonitoringAlertPolicy(
                self,
                "nodes-not-ready",
                display_name=f"{cluster_name}: node not ready",
                combiner="OR",
                notification_channels=channels,
                user_labels=labels,
                documentation=MonitoringAlertPolicyDocumentation(
                    content=f"A node of {cluster_name} has not been ready for {mon.nodes_not_ready_minutes} minutes.",
                    mime_type="text/markdown",
                ),
                conditions=[
                    MonitoringAlertPolicyConditions(
                        display_name="node condition Ready is not True",
                        condition_threshold=MonitoringAlertPolicyConditionsConditionThreshold(
                            filter=f'metric.type="kubernetes.io/node/status_condition" resource.type="k8s_node" '
                            f'resource.label."cluster_name"="{cluster_name}" metric.label."condition"="Ready" '
                            'metric.label."status"!="True"',
                            comparison="COMPARISON_GT",
                            threshold_value=0,
                            duration=f"{mon.nodes_not_ready_minutes * 60}s",
                            # the metric is GAUGE BOOL (Cloud Monitoring, "Kubernetes metrics"): a Boolean aligner
                            # (ALIGN_MAX is for numeric values: googleapis monitoring/v3/common.proto, Aligner)
                            aggregations=[
                                MonitoringAlertPolicyConditionsConditionThresholdAggregations(
                                    alignment_period="60s", per_series_aligner="ALIGN_COUNT_TRUE", cross_series_reducer="REDUCE_SUM"
                                )
                            ],
                        ),
                    )
                ],
            )
            MonitoringAlertPolicy(
                self,
                "serving-restarts",
                display_name=f"{cluster_name}: model server restarting",
                combiner="OR",
                notification_channels=channels,
                user_labels=labels,
                documentation=MonitoringAlertPolicyDocumentation(
                    content=f"Containers in {SERVING_NAMESPACE} restarted more than 3 times in 10 minutes.", mime_type="text/markdown"
                ),
                conditions=[
                    MonitoringAlertPolicyConditions(
                        display_name="container restarts",
                        condition_threshold=MonitoringAlertPolicyConditionsConditionThreshold(
                            filter=f'metric.type="kubernetes.io/container/restart_count" resource.type="k8s_container" '
                            f'resource.label."cluster_name"="{cluster_name}" resource.label."namespace_name"="{SERVING_NAMESPACE}"',
                            comparison="COMPARISON_GT",
                            threshold_value=3,
                            duration="0s",
                            aggregations=[
                                MonitoringAlertPolicyConditionsConditionThresholdAggregations(
                                    alignment_period="600s", per_series_aligner="ALIGN_DELTA", cross_series_reducer="REDUCE_SUM"
                                )
                            ],
                        ),
                    )
                ],
            )
        MonitoringDashboard(self, "dashboard", dashboard_json=json.dumps(dashboard(env, cluster_name, gpu_pools), sort_keys=True))


def dashboard(env: Environment, cluster_name: str | None, gpu_pools: list[GpuPool]) -> dict[str, Any]:
    """The environment's Cloud Monitoring dashboard: nodes per GPU pool against its max, the cluster."""

    def chart(title: str, flt: str, reducer: str, threshold: float | None = None) -> dict[str, Any]:
        widget: dict[str, Any] = {
            "title": title,
            "xyChart": {
                "dataSets": [
                    {
                        "timeSeriesQuery": {
                            "timeSeriesFilter": {
                                "filter": flt,
                                "aggregation": {"alignmentPeriod": "60s", "perSeriesAligner": "ALIGN_MEAN", "crossSeriesReducer": reducer},
                            }
                        },
                        "plotType": "LINE",
                    }
                ]
            },
        }
        if threshold is not None:
            widget["xyChart"]["thresholds"] = [{"label": "max size", "value": threshold}]
        return widget

    widgets = [
        chart(f"{p.name}: GPU nodes", node_count_filter(cluster_name or "", p.name), "REDUCE_COUNT", p.max_nodes * p.zones)
        for p in gpu_pools
    ]
    if cluster_name:
        widgets.append(chart(f"{cluster_name}: nodes", node_count_filter(cluster_name), "REDUCE_COUNT"))
        widgets.append(
            chart(
                f"{cluster_name}: GPU duty cycle",
                f'metric.type="kubernetes.io/container/accelerator/duty_cycle" resource.type="k8s_container" resource.label."cluster_name"="{cluster_name}"',
                "REDUCE_MEAN",
            )
        )
    return {"displayName": env.resource_name("overview"), "gridLayout": {"columns": "2", "widgets": widgets}}
