"""The price catalog (``prices.yaml``): loaded once, validated, looked up by cloud, region and key.

Every :class:`Price` keeps its provenance (source URL, date read, confirmed or not) so that a cost
item can say where its unit price came from.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from infra.errors import InfraError

CATALOG_FILE = Path(__file__).with_name("prices.yaml")


class CatalogError(InfraError):
    """The price catalog is malformed (names the file and the entry)."""


class _Gpus(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    type: str
    count: Annotated[int, Field(ge=1)]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    usd: Annotated[float, Field(ge=0)] | None = None
    factor: Annotated[float, Field(gt=0, le=1)] | None = None
    count: Annotated[int, Field(ge=1)] | None = None
    unit: str = ""
    gpus: _Gpus | None = None
    source: str
    read: dt.date
    confirmed: bool = True
    note: str = ""

    @model_validator(mode="after")
    def _one_value(self) -> _Entry:
        if sum(v is not None for v in (self.usd, self.factor, self.count)) != 1:
            raise ValueError("give exactly one of usd, factor or count")
        if self.usd is not None and not self.unit:
            raise ValueError("a usd price needs its unit (e.g. instance-hour, GB-month)")
        return self


class _Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    currency: Literal["USD"]
    hours_per_month: Annotated[float, Field(gt=0)]
    sources: dict[str, Annotated[str, Field(pattern=r"^https://")]]
    aws: dict[str, dict[str, _Entry]] = {}
    gcp: dict[str, dict[str, _Entry]] = {}


@dataclass(frozen=True)
class Price:
    cloud: str
    region: str
    key: str
    value: float  # usd, factor or count, whichever the entry gives
    unit: str
    source: str  # URL
    read: dt.date
    confirmed: bool
    note: str
    gpus: tuple[str, int] | None = None

    def cite(self) -> str:
        flag = "" if self.confirmed else ", unconfirmed"
        return f"{self.source} (read {self.read.isoformat()}{flag})"


class MissingPrice(LookupError):
    """The catalog has no price for what a resource needs; the resource is reported unsupported."""

    def __init__(self, cloud: str, region: str, key: str) -> None:
        self.cloud, self.region, self.key = cloud, region, key
        super().__init__(f"no price for {key} in {cloud} {region} in the catalog")


@dataclass(frozen=True)
class Catalog:
    path: Path
    hours_per_month: float
    prices: dict[tuple[str, str, str], Price]

    def get(self, cloud: str, region: str, key: str) -> Price:
        try:
            return self.prices[(cloud, region, key)]
        except KeyError:
            raise MissingPrice(cloud, region, key) from None

    def find(self, cloud: str, region: str, key: str) -> Price | None:
        return self.prices.get((cloud, region, key))

    def regions(self, cloud: str) -> list[str]:
        return sorted({r for c, r, _ in self.prices if c == cloud})

    @property
    def unconfirmed(self) -> int:
        return sum(not p.confirmed for p in self.prices.values())


def _where(loc: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in loc)


def load_catalog(path: Path | None = None) -> Catalog:
    path = path or CATALOG_FILE
    return _load(path.resolve())


@functools.cache
def _load(path: Path) -> Catalog:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        model = _Catalog.model_validate(data)
    except FileNotFoundError:
        raise CatalogError(f"{path}: price catalog not found") from None
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        raise CatalogError(f"{path}: {_where(first['loc'])}: {first['msg']}") from None
    prices: dict[tuple[str, str, str], Price] = {}
    for cloud in ("aws", "gcp"):
        for region, entries in getattr(model, cloud).items():
            for key, e in entries.items():
                if e.source not in model.sources:
                    raise CatalogError(
                        f"{path}: {cloud}.{region}.{key}.source: unknown source {e.source!r}; one of {sorted(model.sources)}"
                    )
                value = e.usd if e.usd is not None else e.factor if e.factor is not None else float(e.count or 0)
                gpus = (e.gpus.type, e.gpus.count) if e.gpus else None
                prices[(cloud, region, key)] = Price(
                    cloud, region, key, float(value), e.unit, model.sources[e.source], e.read, e.confirmed, e.note, gpus
                )
    return Catalog(path, model.hours_per_month, prices)
