"""Which resources carry the environment's tags (AWS) or labels (GCP), and under which attribute.

Read by the tagging aspect in ``stacks/`` and by the policy rule on required tags in ``infra/``, so
the rule checks exactly what the aspect promises. Plain data: no cdktf import.
"""

from __future__ import annotations

# the tags every taggable resource must carry (policy rule MLP001)
POLICY_TAGS = ("environment", "team", "cost-center", "managed-by")

# attribute that carries the environment's tags, by provider prefix of the resource type
TAG_ATTRIBUTE = {"aws_": "tags", "google_": "labels"}
# resources whose attribute of that name is not a key/value map of the resource's own tags
NOT_TAGGABLE = frozenset({"google_cloudbuild_trigger"})
# google resources that take their labels under another name (a notification channel's ``labels``
# are its settings, such as ``email_address``)
GOOGLE_LABELS_AS = {"google_container_cluster": "resource_labels", "google_monitoring_notification_channel": "user_labels"}

# Resource types our stacks use that take tags or labels (tests check this against the provider
# bindings). A resource of one of these types without its tag attribute fails MLP001; any other
# resource is checked when it carries the attribute.
KNOWN_TAGGABLE = frozenset(
    {
        "aws_budgets_budget",
        "aws_codebuild_project",
        "aws_eks_access_entry",
        "aws_vpc_security_group_ingress_rule",
        "aws_cloudwatch_metric_alarm",
        "aws_cloudwatch_log_group",
        "aws_default_security_group",
        "aws_ecr_repository",
        "aws_eip",
        "aws_eks_addon",
        "aws_eks_cluster",
        "aws_eks_node_group",
        "aws_eks_pod_identity_association",
        "aws_flow_log",
        "aws_iam_role",
        "aws_sns_topic",
        "aws_internet_gateway",
        "aws_kms_key",
        "aws_lambda_function",
        "aws_launch_template",
        "aws_nat_gateway",
        "aws_route_table",
        "aws_s3_bucket",
        "aws_security_group",
        "aws_sqs_queue",
        "aws_subnet",
        "aws_vpc",
        "google_artifact_registry_repository",
        "google_container_cluster",
        "google_kms_crypto_key",
        "google_monitoring_notification_channel",
        "google_storage_bucket",
    }
)


def tag_attribute_name(rtype: str) -> str | None:
    """The attribute that would carry tags/labels for a resource type, before asking whether the type has it."""
    if rtype in NOT_TAGGABLE:
        return None
    if rtype in GOOGLE_LABELS_AS:
        return GOOGLE_LABELS_AS[rtype]
    for prefix, attribute in TAG_ATTRIBUTE.items():
        if rtype.startswith(prefix):
            return attribute
    return None
