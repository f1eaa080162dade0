"""``infra cost refresh``: re-read the catalog's prices from the providers' price APIs, for exactly
what the synthesized stacks use, and write back only the entries whose value, source or date changed.

What to ask for is not a list kept by hand: the estimate of the named environments is run once
against a catalog that records every key it looks up (:class:`~infra.cost.catalog.RecordingCatalog`),
found or missing: the instance and machine types, the zones of the spot groups, the regions and the
services the stacks use. Each cloud's adapter (``refresh_aws``, ``refresh_gcp``, behind the
:class:`Adapter` protocol, imported lazily) turns the keys it knows how to read into quotes; keys
that are not prices an API gives (family factors, counts) are not asked for.

The catalog is written back with a YAML round trip that keeps its comments and order; an entry read
again with the same answer on the same day is left byte for byte, so a second identical run changes
nothing. A price the API does not list stays as it is, marked ``unlisted`` with the day, and is
named in the report.
"""

from __future__ import annotations

import datetime as dt
import importlib
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from infra.cost.catalog import CATALOG_FILE, Catalog, Price, RecordingCatalog, load_catalog, parse_catalog
from infra.errors import EXIT_FINDINGS, InfraError

FAMILY_SCENARIOS = ("spot", "commit-1y", "commit-3y")
PLAUSIBLE = (0.2, 5.0)  # a re-read price outside this ratio of the catalog's is refused, not written
SPOT_PLAUSIBLE = (0.05, 1.0)  # a spot price outside this share of on-demand is refused (moto answers 0.00001)


class RefreshError(InfraError):
    """Bad input or missing credentials: nothing is written."""


@dataclass(frozen=True)
class Want:
    """One catalog key the stacks' pricing looked up, and the catalog's entry for it (None: missing)."""

    cloud: str
    region: str
    key: str
    current: Price | None

    @property
    def where(self) -> str:
        return f"{self.cloud} {self.region} {self.key}"


@dataclass(frozen=True)
class Quote:
    """What an API answered for one key: a price in USD per the entry's unit."""

    cloud: str
    region: str
    key: str
    usd: float
    unit: str
    source: str  # a key of the catalog's `sources`
    ref: str  # SKU, offer term, rate code, timestamp: enough to find the answer again
    note: str = ""  # for a new entry only


@dataclass(frozen=True)
class Miss:
    """A wanted key not written: ``unlisted`` (the API was asked and listed nothing: the entry is
    marked), ``refused`` (an implausible answer) or ``skipped`` (not a price this adapter reads)."""

    cloud: str
    region: str
    key: str
    kind: Literal["unlisted", "refused", "skipped"]
    reason: str


class Adapter(Protocol):
    cloud: str

    def check(self) -> None:
        """Raise :class:`RefreshError` when the credentials the API needs are missing."""

    def fetch(self, wants: Sequence[Want], catalog: Catalog) -> tuple[list[Quote], list[Miss]]:
        """Quotes for the wants it can read; a miss for each other want."""


ADAPTERS = {"aws": "infra.cost.refresh_aws:AwsPrices", "gcp": "infra.cost.refresh_gcp:GcpPrices"}


def adapter(cloud: str) -> Adapter:
    module, _, name = ADAPTERS[cloud].partition(":")
    made: Adapter = getattr(importlib.import_module(module), name)()
    return made


@dataclass(frozen=True)
class Change:
    cloud: str
    region: str
    key: str
    what: Literal["new", "changed", "re-read", "unlisted"]
    old: float | None
    new: float | None
    old_read: dt.date | None
    ref: str = ""

    def text(self) -> str:
        where = f"{self.cloud} {self.region} {self.key}"
        if self.what == "unlisted":
            return f"{where}: not listed by the API; kept {_money(self.old)} (read {self.old_read}), marked unlisted"
        if self.what == "new":
            return f"{where}: new, {_money(self.new)} [{self.ref}]"
        if self.what == "re-read":
            return f"{where}: {_money(self.new)} unchanged, re-read (was read {self.old_read}) [{self.ref}]"
        pct = f" ({100 * ((self.new or 0) / self.old - 1):+.2f}%)" if self.old else ""
        return f"{where}: {_money(self.old)} → {_money(self.new)}{pct} [{self.ref}]"


@dataclass
class RefreshResult:
    catalog: Path
    today: dt.date
    wanted: list[Want]
    changes: list[Change] = field(default_factory=list)
    misses: list[Miss] = field(default_factory=list)
    written: bool = False
    dry_run: bool = False

    @property
    def findings(self) -> list[Miss]:
        """The prices the stacks use that could not be read: an answer refused, or a catalog entry
        the API no longer lists (a missing type or commitment price the catalog never had is not one)."""
        known = {(w.cloud, w.region, w.key) for w in self.wanted if w.current is not None}
        return [m for m in self.misses if m.kind == "refused" or (m.kind == "unlisted" and (m.cloud, m.region, m.key) in known)]

    @property
    def exit_code(self) -> int:
        return EXIT_FINDINGS if self.findings else 0


def _money(value: float | None) -> str:
    from infra.cost.model import _num

    return "–" if value is None else f"${_num(value)}"


def is_family_factor(key: str) -> bool:
    """``spot/ec2/g6``, ``commit-3y/gce/a2``: a factor kept in the catalog, not an API price."""
    from infra.cost.pricing import family_of

    parts = key.split("/")
    if len(parts) != 3 or parts[0] not in FAMILY_SCENARIOS:
        return False
    return "@" not in parts[2] and family_of(parts[1], parts[2]) == parts[2]


def wanted(outdir: Path, env_dir: Path, names: Iterable[str] | None, catalog: Catalog) -> list[Want]:
    """Every key the estimate of ``names`` looks up that an API could answer, sorted."""
    from infra.cost.estimate import estimate

    recording = RecordingCatalog(catalog)
    estimate(outdir, env_dir, names, catalog=recording)
    wants = []
    for cloud, region, key in sorted(recording.asked):
        current = catalog.find(cloud, region, key)
        if current is not None and current.kind != "usd":
            continue  # factors and counts are kept by hand, with their sources
        if current is None and is_family_factor(key):
            continue
        wants.append(Want(cloud, region, key, current))
    return wants


def plausible(want: Want, quote: Quote, catalog: Catalog, quotes: dict[tuple[str, str, str], Quote]) -> str:
    """Why ``quote`` is not believable ("" when it is): far from the catalog's figure, or a spot
    price outside a sane share of the type's on-demand price (read now or in the catalog)."""
    if not math.isfinite(quote.usd) or quote.usd < 0:
        return f"{quote.usd} is not a price"
    if want.key.startswith("spot/"):
        machine = want.key.split("/", 2)[2].split("@", 1)[0]
        service = want.key.split("/")[1]
        od_key = f"{service}/{machine}"
        od_quote = quotes.get((want.cloud, want.region, od_key))
        od = od_quote.usd if od_quote else (p.value if (p := catalog.find(want.cloud, want.region, od_key)) else None)
        if od:
            share = quote.usd / od
            low, high = SPOT_PLAUSIBLE
            if not low <= share <= high:
                return f"${quote.usd:g} is {share:.5f} of the on-demand ${od:g}, outside {low:g}-{high:g}"
        return ""
    if want.current is not None and want.current.value > 0:
        ratio = quote.usd / want.current.value
        low, high = PLAUSIBLE
        if not low <= ratio <= high:
            return f"${quote.usd:g} is {ratio:.2f}× the catalog's ${want.current.value:g}, outside {low:g}-{high:g}×"
    return ""


def refresh(
    outdir: Path,
    env_dir: Path,
    names: Iterable[str] | None = None,
    *,
    clouds: Sequence[str] = ("aws", "gcp"),
    catalog_path: Path | None = None,
    dry_run: bool = False,
    today: dt.date | None = None,
) -> RefreshResult:
    """Read the prices the stacks use from the clouds' APIs and write the catalog back."""
    if not clouds:
        raise RefreshError("nothing to refresh: --no-aws and --no-gcp leave no cloud; keep at least one")
    path = (catalog_path or CATALOG_FILE).resolve()
    catalog = load_catalog(path)
    today = today or dt.date.today()
    wants = wanted(outdir, env_dir, names, catalog)
    adapters = [adapter(c) for c in clouds]
    for a in adapters:  # every credential first: a missing one writes nothing
        a.check()
    quotes: list[Quote] = []
    misses: list[Miss] = []
    for a in adapters:
        mine = [w for w in wants if w.cloud == a.cloud]
        if not mine:
            continue
        got, missed = a.fetch(mine, catalog)
        quotes += got
        misses += missed
    by_key = {(q.cloud, q.region, q.key): q for q in quotes}
    wants_by_key = {(w.cloud, w.region, w.key): w for w in wants}
    accepted = []
    for q in quotes:
        want = wants_by_key.get((q.cloud, q.region, q.key))
        if want is None:
            continue  # an adapter's answer to a question nobody asked
        why = plausible(want, q, catalog, by_key)
        if why:
            misses.append(Miss(q.cloud, q.region, q.key, "refused", f"implausible answer, not written: {why} [{q.ref}]"))
        else:
            accepted.append(q)
    result = RefreshResult(path, today, wants, misses=misses, dry_run=dry_run)
    unlisted = [m for m in misses if m.kind == "unlisted"]
    result.changes, result.written = write_catalog(path, accepted, unlisted, today, dry_run=dry_run)
    return result


def _yaml() -> Any:
    from ruamel.yaml import YAML

    y = YAML()
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    y.representer.ignore_aliases = lambda *args: True  # the same date written twice is two dates, not an anchor
    return y


def _same(a: Any, b: float) -> bool:
    return isinstance(a, int | float) and not isinstance(a, bool) and math.isclose(float(a), b, rel_tol=1e-12, abs_tol=1e-15)


def _clean(value: float) -> float:
    """A price as the catalog writes it: ten significant digits, no float noise (0.1340228400000001)."""
    return float(f"{value:.10g}")


def _flow(items: list[tuple[str, Any]]) -> Any:
    from ruamel.yaml.comments import CommentedMap

    entry = CommentedMap(items)
    entry.fa.set_flow_style()
    return entry


def write_catalog(
    path: Path, quotes: Sequence[Quote], unlisted: Sequence[Miss], today: dt.date, *, dry_run: bool = False
) -> tuple[list[Change], bool]:
    """Apply ``quotes`` and ``unlisted`` marks to the catalog file; returns the changes and whether
    it wrote. Entries whose value, unit, source, reference and date are already what the API
    answered are not touched; the file is written only when something changed, and only after the
    new text loads as a valid catalog."""
    from ruamel.yaml.comments import CommentedMap

    original = path.read_text(encoding="utf-8")
    y = _yaml()
    doc = y.load(original)
    changes: list[Change] = []
    for q in quotes:
        usd = _clean(q.usd)
        regions = doc.setdefault(q.cloud, CommentedMap())
        entries = regions.setdefault(q.region, CommentedMap())
        entry = entries.get(q.key)
        if entry is None:
            fields: list[tuple[str, Any]] = [("usd", usd), ("unit", q.unit), ("source", q.source), ("ref", q.ref), ("read", today)]
            if q.note:
                fields.append(("note", q.note))
            entries[q.key] = _flow(fields)
            changes.append(Change(q.cloud, q.region, q.key, "new", None, usd, None, q.ref))
            continue
        old_value = entry.get("usd")
        old_read = entry.get("read")
        want = {"usd": usd, "unit": q.unit, "source": q.source, "ref": q.ref, "read": today}
        differs = not _same(old_value, usd) or any(entry.get(k) != v for k, v in want.items() if k != "usd")
        differs = differs or any(k in entry for k in ("confirmed", "unlisted", "as_of"))
        if not differs:
            continue
        if not _same(old_value, usd):
            entry["usd"] = usd
        for k in ("unit", "source"):
            if entry.get(k) != want[k]:
                entry[k] = want[k]
        if "ref" in entry:
            entry["ref"] = q.ref
        else:
            entry.insert(list(entry).index("source") + 1, "ref", q.ref)
        entry["read"] = today
        for k in ("confirmed", "unlisted", "as_of"):  # the API's answer is the confirmation
            entry.pop(k, None)
        what: Literal["changed", "re-read"] = "re-read" if _same(old_value, usd) else "changed"
        changes.append(Change(q.cloud, q.region, q.key, what, float(old_value) if old_value is not None else None, usd, old_read, q.ref))
    for m in unlisted:
        entry = doc.get(m.cloud, {}).get(m.region, {}).get(m.key)
        if entry is None or entry.get("unlisted") == today:
            continue
        if "unlisted" in entry:
            entry["unlisted"] = today
        else:
            entry.insert(list(entry).index("read") + 1, "unlisted", today)
        value = entry.get("usd")
        changes.append(Change(m.cloud, m.region, m.key, "unlisted", None if value is None else float(value), None, entry.get("read")))
    if not changes or dry_run:
        return changes, False
    buffer = io.StringIO()
    y.dump(doc, buffer)
    text = buffer.getvalue()
    parse_catalog(text, path)  # never write a catalog that does not load
    path.write_text(text, encoding="utf-8")
    return changes, True
