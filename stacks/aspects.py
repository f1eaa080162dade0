"""Tags (AWS) and labels (GCP) on every resource that takes them, applied once by an aspect."""

from __future__ import annotations

from typing import Any

import jsii
from cdktf import IAspect, TerraformResource
from constructs import IConstruct

# attribute that carries the environment's tags, by provider prefix of the resource type
TAG_ATTRIBUTE = {"aws_": "tags", "google_": "labels"}
# resources whose attribute of that name is not a key/value map of the resource's own tags
NOT_TAGGABLE = frozenset({"google_cloudbuild_trigger"})
# google resources that take their labels under another name
GOOGLE_LABELS_AS = {"google_container_cluster": "resource_labels"}


def tag_attribute(resource: TerraformResource) -> str | None:
    rtype = resource.terraform_resource_type
    if rtype in NOT_TAGGABLE:
        return None
    if rtype in GOOGLE_LABELS_AS:
        return GOOGLE_LABELS_AS[rtype]
    for prefix, attribute in TAG_ATTRIBUTE.items():
        if rtype.startswith(prefix):
            return attribute if hasattr(type(resource), attribute) else None
    return None


@jsii.implements(IAspect)
class TagEverything:
    """Merge the environment's tags into each taggable resource; a resource's own keys win."""

    def __init__(self, tags: dict[str, str]) -> None:
        self.tags = dict(tags)

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, TerraformResource):
            return
        attribute = tag_attribute(node)
        if attribute is None:
            return
        current: Any = getattr(node, f"{attribute}_input", None) or {}
        setattr(node, attribute, {**self.tags, **current})
