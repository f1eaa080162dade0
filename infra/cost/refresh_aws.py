"""AWS prices for ``infra cost refresh``: the Price List Query API (``pricing.get_products``) for
on-demand and reserved prices, and EC2's spot price history for the zones each spot group uses.

Which product answers a catalog key is a filter on the public price list's attributes, written once
here (``MAPPINGS``); a key without a mapping is not asked for. The Price List API answers from
us-east-1 for every region (the product's ``regionCode`` says which region it prices); spot prices
come from the region's own EC2 endpoint. Clients are made by :mod:`infra.clouds.aws`, so
``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_PRICING`` / ``_EC2``) points them at a local server.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from infra.clouds import aws
from infra.cost.catalog import Catalog
from infra.cost.refresh import Miss, Quote, RefreshError, Want

PRICE_LIST_REGION = "us-east-1"  # the Price List Query API's endpoint; it prices every region
SOURCE = "aws-price-list-api"
SPOT_SOURCE = "aws-spot-price-history"
LINUX = ("Linux/UNIX", "Linux/UNIX (Amazon VPC)")


@dataclass(frozen=True)
class Mapping:
    """Which Price List product prices a catalog key: the service, exact attribute filters
    (TERM_MATCH), a pattern the ``usagetype`` must match, the unit the price list must give, and the
    factor from its unit to the catalog's."""

    service: str
    filters: tuple[tuple[str, str], ...]
    usagetype: str = ""  # regex, searched; "" for none
    unit: Callable[[str], bool] = lambda u: True
    scale: float = 1.0
    catalog_unit: str = ""


def _hours(u: str) -> bool:
    return u.lower() in ("hrs", "hours", "hour")


def _gb_month(u: str) -> bool:
    return u.lower() in ("gb-mo", "gb-month")


def _gb(u: str) -> bool:
    return u.lower() == "gb"


# Attribute names and values as the public price list spells them (the AmazonEC2 offer file; the
# usagetypes as they appear on bills: us-east-1 has no region prefix for EC2, EKS prefixes USE1-).
MAPPINGS: dict[str, Mapping] = {
    "ebs/gp3": Mapping("AmazonEC2", (("productFamily", "Storage"), ("volumeApiName", "gp3")), unit=_gb_month, catalog_unit="GB-month"),
    "ebs/gp2": Mapping("AmazonEC2", (("productFamily", "Storage"), ("volumeApiName", "gp2")), unit=_gb_month, catalog_unit="GB-month"),
    "vpc/nat-gateway-hour": Mapping(
        "AmazonEC2", (("productFamily", "NAT Gateway"),), r"^([A-Z0-9]+-)?NatGateway-Hours$", _hours, catalog_unit="gateway-hour"
    ),
    "vpc/nat-gateway-gb": Mapping(
        "AmazonEC2", (("productFamily", "NAT Gateway"),), r"^([A-Z0-9]+-)?NatGateway-Bytes$", _gb, catalog_unit="GB"
    ),
    "eks/cluster-standard": Mapping("AmazonEKS", (), r"AmazonEKS-Hours:perCluster$", _hours, catalog_unit="cluster-hour"),
    "eks/cluster-extended": Mapping("AmazonEKS", (), r"AmazonEKS-Hours:extendedSupport$", _hours, catalog_unit="cluster-hour"),
    "lambda/requests": Mapping(
        "AWSLambda", (("group", "AWS-Lambda-Requests"),), unit=lambda u: "request" in u.lower(), scale=1e6, catalog_unit="1M requests"
    ),
    "lambda/duration-x86_64": Mapping(
        "AWSLambda", (("group", "AWS-Lambda-Duration"),), unit=lambda u: "second" in u.lower(), catalog_unit="GB-second"
    ),
    "lambda/duration-arm64": Mapping(
        "AWSLambda", (("group", "AWS-Lambda-Duration-ARM"),), unit=lambda u: "second" in u.lower(), catalog_unit="GB-second"
    ),
    "cloudwatch/logs-ingestion": Mapping("AmazonCloudWatch", (), r"^([A-Z0-9]+-)?DataProcessing-Bytes$", _gb, catalog_unit="GB"),
    "cloudwatch/logs-storage": Mapping("AmazonCloudWatch", (), r"^([A-Z0-9]+-)?TimedStorage-ByteHrs$", _gb_month, catalog_unit="GB-month"),
}

# Linux, shared tenancy, no pre-installed software, the capacity in use: one product per type and region
EC2_INSTANCE = (
    ("operatingSystem", "Linux"),
    ("tenancy", "Shared"),
    ("preInstalledSw", "NA"),
    ("capacitystatus", "Used"),
    ("licenseModel", "No License required"),
)
# a commitment: the Reserved term that matches a Compute Savings Plan's terms (convertible, no upfront)
RESERVED = {"commit-1y": "1yr", "commit-3y": "3yr"}


def _price(dimensions: dict[str, Any]) -> tuple[float, str, str] | None:
    """(USD, unit, rate code) of the first non-zero tier of a term's price dimensions."""
    tiers = sorted(dimensions.values(), key=lambda d: float(d.get("beginRange") or 0))
    for d in tiers:
        usd = float((d.get("pricePerUnit") or {}).get("USD") or 0)
        if usd > 0:
            return usd, str(d.get("unit") or ""), str(d.get("rateCode") or "")
    return None


class AwsPrices:
    cloud = "aws"

    def check(self) -> None:
        import boto3

        if boto3.Session().get_credentials() is None:
            raise RefreshError(
                "AWS: no credentials found (environment, shared config, SSO or an instance role); "
                "give them, or refresh the other cloud only with --no-aws"
            )

    def fetch(self, wants: Sequence[Want], catalog: Catalog) -> tuple[list[Quote], list[Miss]]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self._fetch(wants)
        except (ClientError, BotoCoreError) as exc:
            raise RefreshError(f"AWS price APIs: {exc}; nothing written") from None

    def _fetch(self, wants: Sequence[Want]) -> tuple[list[Quote], list[Miss]]:
        pricing = aws.client("pricing", PRICE_LIST_REGION)
        quotes: list[Quote] = []
        misses: list[Miss] = []
        instances: dict[tuple[str, str], dict[str, Any] | None] = {}
        spot: dict[str, list[Want]] = defaultdict(list)
        for w in wants:
            scenario, _, rest = w.key.partition("/")
            if w.key.startswith("ec2/") or (scenario in RESERVED and rest.startswith("ec2/")):
                itype = w.key.rsplit("/", 1)[1]
                if (w.region, itype) not in instances:
                    instances[(w.region, itype)] = self._instance(pricing, w.region, itype)
                product = instances[(w.region, itype)]
                quote, miss = self._instance_quote(w, itype, product)
                quotes += [quote] if quote else []
                misses += [miss] if miss else []
            elif w.key.startswith("spot/ec2/") and "@" in w.key:
                spot[w.region].append(w)
            elif w.key in MAPPINGS:
                quote, miss = self._mapped(pricing, w, MAPPINGS[w.key])
                quotes += [quote] if quote else []
                misses += [miss] if miss else []
            else:
                misses.append(Miss(w.cloud, w.region, w.key, "skipped", "not a price the AWS price APIs are asked for here"))
        for region, zone_wants in spot.items():
            got, missed = self._spot(region, zone_wants)
            quotes += got
            misses += missed
        return quotes, misses

    @staticmethod
    def _products(pricing: Any, service: str, filters: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        pages = pricing.get_paginator("get_products").paginate(
            ServiceCode=service,
            FormatVersion="aws_v1",
            Filters=[{"Type": "TERM_MATCH", "Field": f, "Value": v} for f, v in filters],
            PaginationConfig={"PageSize": 100},
        )
        # each PriceList item is a JSON document as a string
        return [json.loads(item) if isinstance(item, str) else item for page in pages for item in page.get("PriceList", [])]

    def _instance(self, pricing: Any, region: str, itype: str) -> dict[str, Any] | None:
        filters = (("instanceType", itype), ("regionCode", region), *EC2_INSTANCE)
        products = [
            p
            for p in self._products(pricing, "AmazonEC2", filters)
            if p.get("product", {}).get("attributes", {}).get("marketoption", "OnDemand") == "OnDemand"
        ]
        return products[0] if products else None

    @staticmethod
    def _ref(product: dict[str, Any], term: dict[str, Any], rate: str) -> str:
        sku = product.get("product", {}).get("sku", "?")
        version = product.get("version") or product.get("publicationDate") or "?"
        return f"{product.get('serviceCode', 'AmazonEC2')} sku={sku} offerTermCode={term.get('offerTermCode', '?')} rateCode={rate} version={version}"

    def _instance_quote(self, w: Want, itype: str, product: dict[str, Any] | None) -> tuple[Quote | None, Miss | None]:
        if product is None:
            return None, Miss(
                w.cloud,
                w.region,
                w.key,
                "unlisted",
                f"the AWS Price List API lists no AmazonEC2 product for {itype} in {w.region} (Linux, shared tenancy, on-demand)",
            )
        terms = product.get("terms", {})
        scenario = w.key.split("/", 1)[0]
        if scenario in RESERVED:
            lease = RESERVED[scenario]
            for term in (terms.get("Reserved") or {}).values():
                attrs = term.get("termAttributes") or {}
                if (attrs.get("LeaseContractLength"), attrs.get("OfferingClass"), attrs.get("PurchaseOption")) == (
                    lease,
                    "convertible",
                    "No Upfront",
                ):
                    found = _price(term.get("priceDimensions") or {})
                    if found and _hours(found[1]):
                        ref = self._ref(product, term, found[2]) + f" ({lease} convertible no upfront)"
                        return Quote(w.cloud, w.region, w.key, found[0], "instance-hour", SOURCE, ref), None
            return None, Miss(
                w.cloud, w.region, w.key, "unlisted", f"no {lease} convertible no-upfront Reserved term for {itype} in {w.region}"
            )
        for term in (terms.get("OnDemand") or {}).values():
            found = _price(term.get("priceDimensions") or {})
            if found and _hours(found[1]):
                return Quote(w.cloud, w.region, w.key, found[0], "instance-hour", SOURCE, self._ref(product, term, found[2])), None
        return None, Miss(
            w.cloud, w.region, w.key, "unlisted", f"the AmazonEC2 product for {itype} in {w.region} has no hourly on-demand price"
        )

    def _mapped(self, pricing: Any, w: Want, m: Mapping) -> tuple[Quote | None, Miss | None]:
        products = self._products(pricing, m.service, (*m.filters, ("regionCode", w.region)))
        if m.usagetype:
            products = [p for p in products if re.search(m.usagetype, p.get("product", {}).get("attributes", {}).get("usagetype", ""))]
        answers = []
        for p in products:
            for term in (p.get("terms", {}).get("OnDemand") or {}).values():
                found = _price(term.get("priceDimensions") or {})
                if found and m.unit(found[1]):
                    answers.append((found[0] * m.scale, self._ref(p, term, found[2])))
        if not answers:
            what = ", ".join(f"{f}={v}" for f, v in m.filters) + (f", usagetype ~ {m.usagetype}" if m.usagetype else "")
            return None, Miss(
                w.cloud, w.region, w.key, "unlisted", f"the AWS Price List API lists no {m.service} product for {what} in {w.region}"
            )
        if len({round(a[0], 12) for a in answers}) > 1:
            refs = "; ".join(a[1] for a in answers[:3])
            return None, Miss(
                w.cloud, w.region, w.key, "refused", f"{len(answers)} {m.service} products with different prices match: {refs}"
            )
        usd, ref = answers[0]
        unit = w.current.unit if w.current else m.catalog_unit
        return Quote(w.cloud, w.region, w.key, usd, unit, SOURCE, ref), None

    def _spot(self, region: str, wants: Sequence[Want]) -> tuple[list[Quote], list[Miss]]:
        """The spot price in effect now per (type, zone) of the wanted ``spot/ec2/<type>@<zone>`` keys."""
        ec2 = aws.client("ec2", region)
        types = sorted({w.key.split("/", 2)[2].split("@", 1)[0] for w in wants})
        now = dt.datetime.now(dt.UTC)
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        # ProductDescriptions, not a product-description filter (moto answers nothing to the filter)
        pages = ec2.get_paginator("describe_spot_price_history").paginate(
            InstanceTypes=types, ProductDescriptions=["Linux/UNIX"], StartTime=now, EndTime=now
        )
        for page in pages:
            for row in page.get("SpotPriceHistory", []):
                if row.get("ProductDescription") not in LINUX:
                    continue
                key = (row["InstanceType"], row["AvailabilityZone"])
                if key not in latest or row["Timestamp"] > latest[key]["Timestamp"]:
                    latest[key] = row
        quotes, misses = [], []
        for w in wants:
            itype, zone = w.key.split("/", 2)[2].split("@", 1)
            row = latest.get((itype, zone))
            if row is None:
                misses.append(
                    Miss(w.cloud, w.region, w.key, "unlisted", f"EC2 spot price history has no Linux/UNIX price for {itype} in {zone}")
                )
                continue
            stamp = row["Timestamp"].isoformat() if hasattr(row["Timestamp"], "isoformat") else str(row["Timestamp"])
            ref = f"DescribeSpotPriceHistory {itype} {zone} {row['ProductDescription']} at {stamp}"
            quotes.append(Quote(w.cloud, w.region, w.key, float(row["SpotPrice"]), "instance-hour", SPOT_SOURCE, ref))
        return quotes, misses
