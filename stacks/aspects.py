"""Tags (AWS) and labels (GCP) on every resource that takes them, applied once by an aspect."""

from __future__ import annotations

from typing import Any

import jsii
from cdktf import IAspect, TerraformResource
from constructs import IConstruct

from environments.tagging import tag_attribute_name


def tag_attribute(resource: TerraformResource) -> str | None:
    """The attribute of this resource that takes the environment's tags, if its class has one."""
    attribute = tag_attribute_name(resource.terraform_resource_type)
    return attribute if attribute is not None and hasattr(type(resource), attribute) else None


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
