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


@jsii.implements(IAspect)
class PermissionsBoundary:
    """Every IAM role of the environment carries its permissions boundary (``infra bootstrap`` makes
    it): the deploy role may create roles, but none that can do more than the boundary allows, so
    no role it creates can change the CI roles, the state or the boundary itself."""

    def __init__(self, boundary_arn: str) -> None:
        self.boundary_arn = boundary_arn

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, TerraformResource) and node.terraform_resource_type == "aws_iam_role":
            node.add_override("permissions_boundary", self.boundary_arn)
