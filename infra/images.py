"""``infra images ENV``: every image the environment pins, where it must be before the environment
stack is applied, and how it gets there.

* a pin by **tag** in an environment that promotes from none (dev): built from the merged commit
  (``app/Dockerfile``, target ``lambda`` for a Lambda endpoint, ``service`` otherwise) and pushed
  under that tag, unless the tag is already there (ECR repositories refuse to move a tag);
* any pin in an environment that another promotes into (staging from dev, production from
  staging): copied, digest preserved, from the source environment's repository of the same name
  (by digest once promoted; by tag before the first promotion), through the promotion grant the
  source's registries stack gives the target's deploy role: promotion never rebuilds;
* a pin by digest in an environment that promotes from none: it must already be there ("present";
  ``infra preflight --images`` checks it).

The Lambda variant is built with ``--provenance=false --sbom=false``: BuildKit's attestations make an
image index, and Lambda runs single-platform image manifests only (docker/buildx#1533; AWS Lambda
developer guide, "Container image requirements"). ``infra preflight ENV --images`` checks the
result before the apply.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from environments.loader import EnvironmentFileError, Environments, Loc, Problem, format_path
from environments.schema import Environment
from environments.schema.types import ImageRef


@dataclass(frozen=True)
class ImagePin:
    field: str  # serving | aws.endpoints[<i>]
    cloud: str
    repository: str  # the registry URL of this environment's copy
    ref: str  # ":tag" or "@sha256:…"
    target: str  # "service" | "lambda" (the Dockerfile target)
    action: str  # "build" | "copy" | "present"
    copy_from: str = ""  # the source environment's repository@digest for a copy

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "image": self.repository + self.ref, "tag": self.ref[1:] if self.ref.startswith(":") else ""}


def _pin(
    envs: Environments, env: Environment, source: Environment | None, field: Loc, cloud: str, registry: str, ref: ImageRef, target: str
) -> ImagePin:
    repository = env.image_repository(cloud, registry)  # type: ignore[arg-type]
    if source is not None:  # promoted: the same bytes as the source environment's, never rebuilt
        if getattr(source, cloud) is None:
            why = f"{env.name} is promoted from {source.name}, which has no {cloud} registry to copy this image from"
            raise EnvironmentFileError([Problem(envs.file_of(env.name), field, why)])
        copy_from = source.image_repository(cloud, registry) + ref.image_ref  # type: ignore[arg-type]
        return ImagePin(format_path(field), cloud, repository, ref.image_ref, target, "copy", copy_from)
    return ImagePin(format_path(field), cloud, repository, ref.image_ref, target, "build" if ref.image_tag else "present")


def image_pins(env: Environment, envs: Environments) -> list[ImagePin]:
    source = envs.source_of(env.name)
    pins: list[ImagePin] = []
    if env.serving is not None:
        for cloud in env.cluster_clouds():
            pins.append(_pin(envs, env, source, ("serving",), cloud, env.serving.registry, env.serving, "service"))
    if env.aws is not None:
        for i, ep in enumerate(env.aws.endpoints):
            pins.append(_pin(envs, env, source, ("aws", "endpoints", i), "aws", ep.repository, ep, "lambda"))
    return pins
