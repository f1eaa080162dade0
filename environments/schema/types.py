"""The building blocks of the schema: the error that names a field, the frozen model every section
is made of, scalar types (CIDRs, names, labels, e-mail addresses, log retention), taints, image
references and the small checks the sections share."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Annotated, Literal, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator


class FieldError(ValueError):
    """A validation error about one named field of the model being validated."""

    def __init__(self, field: str | tuple[str | int, ...], message: str) -> None:
        self.field: tuple[str | int, ...] = (field,) if isinstance(field, str) else field
        self.message = message
        super().__init__(message)


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _cidr(value: str) -> str:
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IPv4 network in CIDR form ({exc}); e.g. '10.10.0.0/16'") from None
    return str(net)


Cidr = Annotated[str, AfterValidator(_cidr)]
Cloud = Literal["aws", "gcp"]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")]
EnvName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]{1,11}$")]
LabelKey = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
LabelValue = Annotated[str, Field(pattern=r"^[a-z0-9_-]{0,63}$")]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")]
K8sLabels = dict[
    Annotated[str, Field(pattern=r"^([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")],
    Annotated[str, Field(max_length=63)],
]


# CloudWatch Logs accepts only these retention periods; 365+ days satisfies CKV_AWS_338
LogRetentionDays = Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]
ZoneName = Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d[a-z]$")]


def check_scaling(lo: int, desired: int | None, hi: int) -> None:
    if lo > hi:
        raise FieldError("min", f"min ({lo}) is greater than max ({hi}); min <= desired <= max")
    if desired is not None and not lo <= desired <= hi:
        raise FieldError("desired", f"desired ({desired}) is outside min..max ({lo}..{hi}); min <= desired <= max")


class Taint(Model):
    """A Kubernetes taint, in Kubernetes casing; constructs translate it per cloud."""

    key: Annotated[str, Field(min_length=1, max_length=63)]
    value: Annotated[str, Field(max_length=63)] = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class ImageRef(Model):
    """Which image of a registry to run: a tag or a digest, exactly one."""

    image_tag: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")] | None = None
    image_digest: Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")] | None = None

    @model_validator(mode="after")
    def _image(self) -> ImageRef:
        if (self.image_tag is None) == (self.image_digest is None):
            raise FieldError("image_tag", "give exactly one of image_tag or image_digest")
        return self

    @property
    def image_ref(self) -> str:
        """The part after the repository URL: ``:tag`` or ``@sha256:…``."""
        return f"@{self.image_digest}" if self.image_digest else f":{self.image_tag}"


class _Named(Protocol):
    @property
    def name(self) -> str: ...


def unique_names(items: Sequence[_Named], field: str) -> None:
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        name = item.name
        if name in seen:
            raise FieldError((field, i, "name"), f"{name!r} is already used by {field}[{seen[name]}]; names are unique")
        seen[name] = i


def pairs(
    items: list[tuple[tuple[str | int, ...], str]],
) -> list[tuple[tuple[tuple[str | int, ...], str], tuple[tuple[str | int, ...], str]]]:
    return [(items[i], items[j]) for i in range(len(items)) for j in range(i + 1, len(items))]
