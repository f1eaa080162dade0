"""The price catalog (``prices.yaml``): loaded once, validated, looked up by cloud, region and key.

Every :class:`Price` keeps its provenance (source URL, what the provider's API answered, date read,
confirmed or not) and the age after which every report marks it stale (``max_age`` in the file,
by the first part of the key: ``spot/...`` ages faster than a list price).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
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
    ref: str = ""  # what the provider's API answered: SKU, offer term, rate code, timestamp
    read: dt.date
    as_of: dt.date | None = None  # the date the figure describes, when older than the reading
    unlisted: dt.date | None = None  # a refresh asked the provider's API that day and it listed nothing
    confirmed: bool = True
    note: str = ""

    @model_validator(mode="after")
    def _one_value(self) -> _Entry:
        if sum(v is not None for v in (self.usd, self.factor, self.count)) != 1:
            raise ValueError("give exactly one of usd, factor or count")
        if self.usd is not None and not self.unit:
            raise ValueError("a usd price needs its unit (e.g. instance-hour, GB-month)")
        if self.as_of is not None and self.as_of > self.read:
            raise ValueError(f"as_of {self.as_of} is after read {self.read}; as_of is the (older) date the figure describes")
        return self


class _MaxAge(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    days: Annotated[int, Field(ge=1)]
    reason: Annotated[str, Field(min_length=15)]


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    vcpus: Annotated[int, Field(ge=1)]
    memory_gib: Annotated[float, Field(gt=0)]


class _Shapes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    source: str
    read: dt.date
    shapes: dict[str, _Shape]


class _Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    currency: Literal["USD"]
    hours_per_month: Annotated[float, Field(gt=0)]
    max_age: dict[str, _MaxAge]
    sources: dict[str, Annotated[str, Field(pattern=r"^https://")]]
    machine_shapes: _Shapes | None = None
    aws: dict[str, dict[str, _Entry]] = {}
    gcp: dict[str, dict[str, _Entry]] = {}

    @model_validator(mode="after")
    def _default_age(self) -> _Catalog:
        if "default" not in self.max_age:
            raise ValueError("max_age needs a default (days and reason)")
        return self


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
    ref: str = ""
    as_of: dt.date | None = None
    unlisted: dt.date | None = None
    max_age_days: int = 90
    kind: str = "usd"  # usd | factor | count

    @functools.cached_property
    def dated(self) -> dt.date:
        """The date the figure describes (as_of when the entry gives one)."""
        return self.as_of or self.read

    @functools.cached_property
    def stale_after(self) -> dt.date:
        return self.dated + dt.timedelta(days=self.max_age_days)

    def stale(self, today: dt.date) -> bool:
        return today > self.stale_after

    @property
    def trusted(self) -> bool:
        """Confirmed, and listed by the provider's API the last time a refresh asked."""
        return self.confirmed and self.unlisted is None

    def cite(self) -> str:
        flags = []
        if self.as_of:
            flags.append(f"as of {self.as_of.isoformat()}")
        if not self.confirmed:
            flags.append("unconfirmed")
        if self.unlisted:
            flags.append(f"not listed by the provider's API on {self.unlisted.isoformat()}")
        ref = f" [{self.ref}]" if self.ref else ""
        return f"{self.source}{ref} (read {self.read.isoformat()}{''.join(', ' + f for f in flags)})"


class MissingPrice(LookupError):
    """The catalog has no price for what a resource needs; the resource is reported unsupported."""

    def __init__(self, cloud: str, region: str, key: str) -> None:
        self.cloud, self.region, self.key = cloud, region, key
        super().__init__(f"no price for {key} in {cloud} {region} in the catalog")


@dataclass(frozen=True)
class MaxAge:
    days: int
    reason: str


@dataclass(frozen=True)
class Catalog:
    path: Path
    hours_per_month: float
    prices: dict[tuple[str, str, str], Price]
    max_age: dict[str, MaxAge] = field(default_factory=dict)
    shapes: dict[str, tuple[int, float]] = field(default_factory=dict)  # GCE machine type -> (vCPUs, GiB)
    sources: dict[str, str] = field(default_factory=dict)  # key of `sources` -> URL

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
        return sum(not p.trusted for p in self.prices.values())

    def age_of(self, key: str) -> MaxAge:
        return self.max_age.get(key.split("/", 1)[0], self.max_age["default"])

    def stale(self, today: dt.date) -> list[Price]:
        return [p for p in self.prices.values() if p.stale(today)]


class RecordingCatalog(Catalog):
    """A catalog that remembers every key it was asked for, found or not: what `infra cost refresh`
    asks the providers' APIs for is exactly what pricing the synthesized stacks looked up."""

    def __init__(self, base: Catalog) -> None:
        super().__init__(base.path, base.hours_per_month, base.prices, base.max_age, base.shapes, base.sources)
        object.__setattr__(self, "asked", set())

    asked: set[tuple[str, str, str]]

    def get(self, cloud: str, region: str, key: str) -> Price:
        self.asked.add((cloud, region, key))
        return super().get(cloud, region, key)

    def find(self, cloud: str, region: str, key: str) -> Price | None:
        self.asked.add((cloud, region, key))
        return super().find(cloud, region, key)


def _where(loc: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in loc)


def load_catalog(path: Path | None = None) -> Catalog:
    path = path or CATALOG_FILE
    return _load(path.resolve(), path.resolve().stat().st_mtime_ns if path.exists() else 0)


def parse_catalog(text: str, path: Path) -> Catalog:
    """The catalog in ``text`` (the content of ``path``), validated."""
    try:
        data = yaml.safe_load(text)
        model = _Catalog.model_validate(data)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        raise CatalogError(f"{path}: {_where(first['loc'])}: {first['msg']}") from None
    ages = {k: MaxAge(v.days, v.reason) for k, v in model.max_age.items()}
    prices: dict[tuple[str, str, str], Price] = {}
    for cloud in ("aws", "gcp"):
        for region, entries in getattr(model, cloud).items():
            for key, e in entries.items():
                if e.source not in model.sources:
                    raise CatalogError(
                        f"{path}: {cloud}.{region}.{key}.source: unknown source {e.source!r}; one of {sorted(model.sources)}"
                    )
                kind = "usd" if e.usd is not None else "factor" if e.factor is not None else "count"
                value = e.usd if e.usd is not None else e.factor if e.factor is not None else float(e.count or 0)
                gpus = (e.gpus.type, e.gpus.count) if e.gpus else None
                age = ages.get(key.split("/", 1)[0], ages["default"])
                prices[(cloud, region, key)] = Price(
                    cloud,
                    region,
                    key,
                    float(value),
                    e.unit,
                    model.sources[e.source],
                    e.read,
                    e.confirmed,
                    e.note,
                    gpus,
                    e.ref,
                    e.as_of,
                    e.unlisted,
                    age.days,
                    kind,
                )
    shapes: dict[str, tuple[int, float]] = {}
    if model.machine_shapes is not None:
        if model.machine_shapes.source not in model.sources:
            raise CatalogError(f"{path}: machine_shapes.source: unknown source {model.machine_shapes.source!r}")
        shapes = {name: (s.vcpus, s.memory_gib) for name, s in model.machine_shapes.shapes.items()}
    return Catalog(path, model.hours_per_month, prices, ages, shapes, dict(model.sources))


@functools.cache
def _load(path: Path, _mtime: int) -> Catalog:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogError(f"{path}: price catalog not found") from None
    return parse_catalog(text, path)
