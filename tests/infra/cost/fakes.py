"""Local fakes of the providers' price APIs, served on 127.0.0.1 by :func:`tests.servers.http_server`
(moto has no ``pricing`` service, and answers spot prices of 0.00001):

- the AWS Price List Query API (JSON 1.1, ``X-Amz-Target: AWSPriceListService.GetProducts``, TERM_MATCH
  filters, ``NextToken`` paging) and EC2's ``DescribeSpotPriceHistory`` (query protocol, XML);
- the Cloud Billing Catalog API (``GET /v1/services/{id}/skus`` with ``pageToken`` paging).

The real boto3 and google-cloud-billing clients talk to them; the tests read what they were asked.
"""

from __future__ import annotations

import http.server
import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape


@dataclass
class Calls:
    """What a fake was asked, in order."""

    requests: list[dict[str, Any]] = field(default_factory=list)


def ec2_product(itype: str, region: str, on_demand: float, reserved: dict[str, float] | None = None, sku: str = "") -> dict[str, Any]:
    """An AmazonEC2 price-list product: Linux, shared tenancy, on-demand, with convertible no-upfront
    Reserved terms (``{"1yr": 0.5, "3yr": 0.35}``)."""
    sku = sku or f"SKU{itype.replace('.', '').upper()}"
    terms: dict[str, Any] = {
        "OnDemand": {
            f"{sku}.JRTCKXETXF": {
                "offerTermCode": "JRTCKXETXF",
                "sku": sku,
                "termAttributes": {},
                "priceDimensions": {
                    f"{sku}.JRTCKXETXF.6YS6EN2CT7": {
                        "rateCode": f"{sku}.JRTCKXETXF.6YS6EN2CT7",
                        "unit": "Hrs",
                        "beginRange": "0",
                        "endRange": "Inf",
                        "pricePerUnit": {"USD": f"{on_demand:.10f}"},
                    }
                },
            }
        },
        "Reserved": {},
    }
    for lease, usd in (reserved or {}).items():
        code = f"RI{lease.upper()}"
        terms["Reserved"][f"{sku}.{code}"] = {
            "offerTermCode": code,
            "sku": sku,
            "termAttributes": {"LeaseContractLength": lease, "OfferingClass": "convertible", "PurchaseOption": "No Upfront"},
            "priceDimensions": {
                f"{sku}.{code}.6YS6EN2CT7": {"rateCode": f"{sku}.{code}.6YS6EN2CT7", "unit": "Hrs", "pricePerUnit": {"USD": f"{usd:.10f}"}}
            },
        }
    return {
        "serviceCode": "AmazonEC2",
        "version": "20261120000000",
        "product": {
            "productFamily": "Compute Instance",
            "sku": sku,
            "attributes": {
                "instanceType": itype,
                "regionCode": region,
                "operatingSystem": "Linux",
                "tenancy": "Shared",
                "preInstalledSw": "NA",
                "capacitystatus": "Used",
                "licenseModel": "No License required",
                "marketoption": "OnDemand",
                "usagetype": f"BoxUsage:{itype}",
            },
        },
        "terms": terms,
    }


def product(
    service: str, region: str, sku: str, usd: float, unit: str, family: str = "", free_first: bool = False, **attributes: str
) -> dict[str, Any]:
    """Any other price-list product; ``free_first`` adds a 0-priced first tier."""
    dims = {}
    if free_first:
        dims[f"{sku}.T0"] = {"rateCode": f"{sku}.T0", "unit": unit, "beginRange": "0", "endRange": "1000", "pricePerUnit": {"USD": "0"}}
    dims[f"{sku}.T1"] = {
        "rateCode": f"{sku}.JRTCKXETXF.T1",
        "unit": unit,
        "beginRange": "1000" if free_first else "0",
        "endRange": "Inf",
        "pricePerUnit": {"USD": f"{usd:.10f}"},
    }
    return {
        "serviceCode": service,
        "version": "20261120000000",
        "product": {"productFamily": family, "sku": sku, "attributes": {"regionCode": region, **attributes}},
        "terms": {"OnDemand": {f"{sku}.JRTCKXETXF": {"offerTermCode": "JRTCKXETXF", "sku": sku, "priceDimensions": dims}}},
    }


def _matches(p: dict[str, Any], filters: list[dict[str, str]]) -> bool:
    attrs = p["product"]["attributes"]
    for f in filters:
        assert f["Type"] == "TERM_MATCH", f
        have = p["product"].get(f["Field"]) if f["Field"] in ("productFamily", "sku") else attrs.get(f["Field"])
        if have != f["Value"]:
            return False
    return True


def aws_handler(
    products: list[dict[str, Any]], spot: list[dict[str, str]], calls: Calls, page: int = 2
) -> type[http.server.BaseHTTPRequestHandler]:
    """Price List GetProducts over ``products`` (``page`` a response) and DescribeSpotPriceHistory over
    ``spot`` rows ({InstanceType, AvailabilityZone, SpotPrice, Timestamp, ProductDescription})."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            target = self.headers.get("X-Amz-Target", "")
            if target == "AWSPriceListService.GetProducts":
                request = json.loads(raw)
                calls.requests.append({"api": "GetProducts", **request})
                found = [p for p in products if p["serviceCode"] == request["ServiceCode"] and _matches(p, request.get("Filters", []))]
                start = int(request.get("NextToken") or 0)
                size = min(page, int(request.get("MaxResults") or page))
                body: dict[str, Any] = {"FormatVersion": "aws_v1", "PriceList": [json.dumps(p) for p in found[start : start + size]]}
                if start + size < len(found):
                    body["NextToken"] = str(start + size)
                self._send(200, json.dumps(body).encode(), "application/x-amz-json-1.1")
                return
            form = urllib.parse.parse_qs(raw.decode())
            if form.get("Action") == ["DescribeSpotPriceHistory"]:
                types = [v[0] for k, v in form.items() if k.startswith("InstanceType.")]
                calls.requests.append({"api": "DescribeSpotPriceHistory", "InstanceTypes": types})
                items = "".join(
                    "<item>"
                    + "".join(
                        f"<{tag}>{escape(row[key])}</{tag}>"
                        for tag, key in (
                            ("instanceType", "InstanceType"),
                            ("productDescription", "ProductDescription"),
                            ("spotPrice", "SpotPrice"),
                            ("timestamp", "Timestamp"),
                            ("availabilityZone", "AvailabilityZone"),
                        )
                    )
                    + "</item>"
                    for row in spot
                    if not types or row["InstanceType"] in types
                )
                xml = (
                    '<?xml version="1.0" encoding="UTF-8"?>'
                    '<DescribeSpotPriceHistoryResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
                    f"<requestId>fake</requestId><spotPriceHistorySet>{items}</spotPriceHistorySet><nextToken></nextToken>"
                    "</DescribeSpotPriceHistoryResponse>"
                )
                self._send(200, xml.encode(), "text/xml")
                return
            self._send(
                400,
                json.dumps({"__type": "InvalidAction", "message": f"fake: {target or form.get('Action')}"}).encode(),
                "application/json",
            )

    return Handler


def sku(
    sku_id: str,
    description: str,
    usage_type: str,
    usd: float,
    unit: str,
    regions: tuple[str, ...] = ("us-central1",),
    free_first: float = 0,
) -> dict[str, Any]:
    """A Cloud Billing Catalog SKU in the API's JSON (camelCase)."""
    units, nanos = int(usd), round((usd - int(usd)) * 1e9)
    tiers = [{"startUsageAmount": 0, "unitPrice": {"currencyCode": "USD", "units": "0", "nanos": 0}}] if free_first else []
    tiers.append({"startUsageAmount": free_first, "unitPrice": {"currencyCode": "USD", "units": str(units), "nanos": nanos}})
    return {
        "name": f"services/x/skus/{sku_id}",
        "skuId": sku_id,
        "description": description,
        "category": {"serviceDisplayName": "Compute Engine", "resourceFamily": "Compute", "resourceGroup": "CPU", "usageType": usage_type},
        "serviceRegions": list(regions),
        "pricingInfo": [{"effectiveTime": "2026-11-30T10:00:00Z", "pricingExpression": {"usageUnit": unit, "tieredRates": tiers}}],
        "serviceProviderName": "Google",
    }


def billing_handler(skus: dict[str, list[dict[str, Any]]], calls: Calls, page: int = 3) -> type[http.server.BaseHTTPRequestHandler]:
    """``GET /v1/services/{id}/skus``: ``page`` SKUs a response, then ``nextPageToken``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            url = urllib.parse.urlparse(self.path)
            query = urllib.parse.parse_qs(url.query)
            parts = url.path.strip("/").split("/")
            if len(parts) != 4 or parts[:2] != ["v1", "services"] or parts[3] != "skus":
                self.send_error(404)
                return
            service = parts[2]
            calls.requests.append(
                {"service": service, "pageToken": query.get("pageToken", [""])[0], "currencyCode": query.get("currencyCode", [""])[0]}
            )
            listed = skus.get(service, [])
            start = int(query.get("pageToken", ["0"])[0] or 0)
            body = {"skus": listed[start : start + page], "nextPageToken": str(start + page) if start + page < len(listed) else ""}
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
