"""`infra cost refresh` against local fakes of the AWS Price List API, EC2's spot price history and
the Cloud Billing Catalog (and against a moto server for EC2's plumbing): it asks for exactly what
the synthesized stacks use, rewrites only the prices it read (value, source, reference, date),
marks what the API no longer lists, refuses implausible answers, and a second identical run
changes nothing, byte for byte."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.cli.app import main
from infra.cost.catalog import CATALOG_FILE, load_catalog
from infra.cost.estimate import estimate
from infra.cost.refresh import refresh, wanted
from tests.infra.cost.fakes import Calls, aws_handler, billing_handler, ec2_product, product, sku
from tests.servers import http_server

TODAY = dt.date(2026, 12, 2)
REGION = "us-east-1"

# what the fake AWS price list answers: the catalog's on-demand prices but for a g6.2xlarge price
# change, and no t3.large at all (dev's system group: the failing case)
ON_DEMAND = {"g6.xlarge": 0.8048, "g6.2xlarge": 0.9812, "m6i.large": 0.096, "m6i.xlarge": 0.192}
SPOT = {("g6.xlarge", "us-east-1a"): "0.3600", ("g6.xlarge", "us-east-1b"): "0.4100", ("g6.xlarge", "us-east-1c"): "0.4500"}
SPOT |= {("g6.2xlarge", "us-east-1a"): "0.4600", ("g6.2xlarge", "us-east-1b"): "0.5200", ("g6.2xlarge", "us-east-1c"): "0.5800"}


def aws_products() -> list[dict[str, Any]]:
    products = [ec2_product(t, REGION, od, {"1yr": round(0.62 * od, 6), "3yr": round(0.42 * od, 6)}) for t, od in ON_DEMAND.items()]
    products += [
        product("AmazonEC2", REGION, "EBSGP3", 0.08, "GB-Mo", "Storage", volumeApiName="gp3", usagetype="EBS:VolumeUsage.gp3"),
        product("AmazonEC2", REGION, "NATH", 0.045, "Hrs", "NAT Gateway", usagetype="NatGateway-Hours"),
        product("AmazonEC2", REGION, "NATRH", 0.09, "Hrs", "NAT Gateway", usagetype="RegionalNatGateway-Hours"),  # not a zonal gateway
        product("AmazonEC2", REGION, "NATB", 0.045, "GB", "NAT Gateway", usagetype="NatGateway-Bytes"),
        product("AmazonEKS", REGION, "EKSH", 0.10, "Hrs", "Compute", usagetype="USE1-AmazonEKS-Hours:perCluster"),
        product("AWSLambda", REGION, "LREQ", 0.0000002, "Requests", "Serverless", group="AWS-Lambda-Requests", usagetype="Request"),
        product("AWSLambda", REGION, "LDUR", 0.0000166667, "Lambda-GB-Second", "Serverless", group="AWS-Lambda-Duration"),
        product("AmazonCloudWatch", REGION, "CWIN", 0.50, "GB", "Data Payload", usagetype="DataProcessing-Bytes"),
        product("AmazonCloudWatch", REGION, "CWST", 0.03, "GB-Mo", "Storage Snapshot", usagetype="TimedStorage-ByteHrs"),
    ]
    return products


def spot_rows() -> list[dict[str, str]]:
    rows = [
        {
            "InstanceType": t,
            "AvailabilityZone": z,
            "SpotPrice": p,
            "Timestamp": "2026-12-02T08:00:00.000Z",
            "ProductDescription": "Linux/UNIX",
        }
        for (t, z), p in SPOT.items()
    ]
    # an older reading of the same zone, and a Windows price: neither is the price in effect for Linux
    rows.append(
        {
            "InstanceType": "g6.xlarge",
            "AvailabilityZone": "us-east-1a",
            "SpotPrice": "0.9",
            "Timestamp": "2026-12-01T08:00:00.000Z",
            "ProductDescription": "Linux/UNIX",
        }
    )
    rows.append(
        {
            "InstanceType": "g6.xlarge",
            "AvailabilityZone": "us-east-1b",
            "SpotPrice": "0.7",
            "Timestamp": "2026-12-02T09:00:00.000Z",
            "ProductDescription": "Windows",
        }
    )
    return rows


def gcp_skus() -> dict[str, list[dict[str, Any]]]:
    h, gib_h = "h", "GiBy.h"
    compute = [
        sku("E2C", "E2 Instance Core running in Americas", "OnDemand", 0.02181159, h),
        sku("E2R", "E2 Instance Ram running in Americas", "OnDemand", 0.00292353, gib_h),
        sku("E2CV", "E2 Instance Core running in Virginia", "OnDemand", 0.0245, h, ("us-east4",)),  # another region
        sku("E2CS", "Spot Preemptible E2 Instance Core running in Americas", "Preemptible", 0.00654, h),
        sku("E2RS", "Spot Preemptible E2 Instance Ram running in Americas", "Preemptible", 0.000877, gib_h),
        sku("E2C1", "Commitment v1: E2 Cpu in Americas for 1 Year", "Commit1Yr", 0.013741, h),
        sku("E2R1", "Commitment v1: E2 Ram in Americas for 1 Year", "Commit1Yr", 0.001842, gib_h),
        sku("E2C3", "Commitment v1: E2 Cpu in Americas for 3 Years", "Commit3Yr", 0.009815, h),
        sku("E2R3", "Commitment v1: E2 Ram in Americas for 3 Years", "Commit3Yr", 0.001316, gib_h),
        sku("G2C", "G2 Instance Core running in Americas", "OnDemand", 0.024988, h),
        sku("G2R", "G2 Instance Ram running in Americas", "OnDemand", 0.002927, gib_h),
        sku("A88A-5A60-E821", "Nvidia L4 GPU running in Americas", "OnDemand", 0.560040239, h),
        sku("L4DWS", "Nvidia L4 GPU running in Americas attached to DWS Defined Duration VMs", "OnDemand", 0.33, h),  # not this product
        sku("G2CS", "Spot Preemptible G2 Instance Core running in Americas", "Preemptible", 0.009995, h),
        sku("G2RS", "Spot Preemptible G2 Instance Ram running in Americas", "Preemptible", 0.001171, gib_h),
        sku("L4S", "Nvidia L4 GPU attached to Spot Preemptible VMs running in Americas", "Preemptible", 0.224016, h),
        sku("G2C1", "Commitment v1: G2 Cpu in Americas for 1 Year", "Commit1Yr", 0.015742, h),
        sku("G2R1", "Commitment v1: G2 Ram in Americas for 1 Year", "Commit1Yr", 0.001844, gib_h),
        sku("L41", "Commitment v1: Nvidia L4 GPU in Americas for 1 Year", "Commit1Yr", 0.352825, h),
        sku("G2C3", "Commitment v1: G2 Cpu in Americas for 3 Year", "Commit3Yr", 0.011245, h),
        sku("G2R3", "Commitment v1: G2 Ram in Americas for 3 Year", "Commit3Yr", 0.001317, gib_h),
        sku("L43", "Commitment v1: Nvidia L4 GPU in Americas for 3 Years", "Commit3Yr", 0.252018, h),
        sku("PDB", "Balanced PD Capacity in Iowa", "OnDemand", 0.10, "GiBy.mo"),
        sku("EGR", "Network Internet Data Transfer Out from Americas to Americas", "OnDemand", 0.12, "GiBy"),
    ]
    return {
        "6F81-5844-456A": compute,
        "E505-1604-58F8": [
            sku("015F-5732-FFF0", "Networking Cloud NAT Data Processing", "OnDemand", 0.045, "GiBy"),
            sku("8515-9425-D2CE", "Networking Cloud NAT IP Usage", "OnDemand", 0.005, h),
        ],
        "95FF-2EF5-5EA1": [
            sku("GCSI", "Standard Storage Iowa", "OnDemand", 0.020, "GiBy.mo"),
            sku("GCSM", "Standard Storage US Multi-region", "OnDemand", 0.026, "GiBy.mo", ("us-central1", "us-east1", "us-west1")),
        ],
        "CCD8-9BF1-090E": [sku("B561-BFBD-1264", "Regional Kubernetes Clusters", "OnDemand", 0.10, h, ("global",))],
    }


@dataclass
class Fakes:
    aws: Calls
    gcp: Calls


def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Iterator[Fakes]:
    calls = Fakes(Calls(), Calls())
    with (
        http_server(aws_handler(aws_products(), spot_rows(), calls.aws)) as aws_url,
        http_server(billing_handler(gcp_skus(), calls.gcp)) as gcp_url,
    ):
        _credentials(monkeypatch)
        monkeypatch.setenv("AWS_ENDPOINT_URL_PRICING", aws_url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", aws_url)
        monkeypatch.setenv("GOOGLE_API_ENDPOINT", gcp_url)
        yield calls


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    path = tmp_path / "prices.yaml"
    shutil.copy(CATALOG_FILE, path)
    return path


def _entry_lines(text: str) -> dict[str, str]:
    """``cloud region key`` -> the entry's line, for every catalog entry."""
    out, cloud, region = {}, "", ""
    for line in text.splitlines():
        if line in ("aws:", "gcp:"):
            cloud = line[:-1]
        elif cloud and line.startswith("  ") and not line.startswith("   ") and line.rstrip().endswith(":"):
            region = line.strip()[:-1]
        elif cloud and line.startswith("    ") and not line.lstrip().startswith("#") and ": {" in line:
            out[f"{cloud} {region} {line.strip().split(': {', 1)[0]}"] = line
    return out


def test_refresh_rewrites_only_the_prices_it_read_and_a_second_run_is_a_no_op(
    synth_out: Path, env_dir: Path, catalog: Path, fakes: Fakes
) -> None:
    before = catalog.read_text()
    result = refresh(synth_out, env_dir, catalog_path=catalog, today=TODAY)
    after = catalog.read_text()
    assert result.written
    changes = {f"{c.cloud} {c.region} {c.key}": c for c in result.changes}

    # a price change: g6.2xlarge $0.9776 → $0.9812, with the API's SKU and the day it was read
    g6 = changes["aws us-east-1 ec2/g6.2xlarge"]
    assert (g6.what, g6.old, g6.new) == ("changed", 0.9776, 0.9812)
    lines = _entry_lines(after)
    assert lines["aws us-east-1 ec2/g6.2xlarge"] == (
        "    ec2/g6.2xlarge: {usd: 0.9812, unit: instance-hour, source: aws-price-list-api, "
        "ref: AmazonEC2 sku=SKUG62XLARGE offerTermCode=JRTCKXETXF rateCode=SKUG62XLARGE.JRTCKXETXF.6YS6EN2CT7 version=20261120000000, "
        "read: 2026-12-02}"
    )
    # the same value read again: confirmed now (the `confirmed: false` goes), dated today
    assert changes["aws us-east-1 ec2/g6.xlarge"].what == "re-read"
    assert "confirmed" not in lines["aws us-east-1 ec2/g6.xlarge"] and "read: 2026-12-02" in lines["aws us-east-1 ec2/g6.xlarge"]
    # GCP machines are summed from SKUs: e2-standard-4 = 4 × 0.02181159 + 16 × 0.00292353 = $0.13402284 (was 0.134012)
    e2 = changes["gcp us-central1 gce/e2-standard-4"]
    assert e2.new == pytest.approx(0.13402284) and e2.ref == "core E2C × 4 + ram E2R × 16"
    # g2-standard-8 = 8 × 0.024988 + 32 × 0.002927 + 1 × 0.560040239 (not the DWS L4 SKU) = $0.853608239
    assert changes["gcp us-central1 gce/g2-standard-8"].new == pytest.approx(0.853608239)
    # new entries: spot per zone and per machine, commitments per type
    new = {k for k, c in changes.items() if c.what == "new"}
    assert {
        "aws us-east-1 spot/ec2/g6.xlarge@us-east-1a",
        "gcp us-central1 spot/gce/g2-standard-8",
        "aws us-east-1 commit-3y/ec2/m6i.xlarge",
    } <= new
    assert changes["aws us-east-1 spot/ec2/g6.xlarge@us-east-1a"].new == 0.36  # the latest Linux price, not the older 0.9
    # spot g2-standard-8 = 8 × 0.009995 + 32 × 0.001171 + 0.224016 = $0.341448; 3-year = 8 × 0.011245 + 32 × 0.001317 + 0.252018 = $0.384122
    assert changes["gcp us-central1 spot/gce/g2-standard-8"].new == pytest.approx(0.341448)
    assert changes["gcp us-central1 commit-3y/gce/g2-standard-8"].new == pytest.approx(0.384122)
    # NAT: the zonal gateway's hour, not the regional gateway's; GCS: the region's own SKU, not the multi-region's
    assert changes["aws us-east-1 vpc/nat-gateway-hour"].new == 0.045 and changes["gcp us-central1 gcs/standard-storage"].new == 0.02

    # the failing case: the API lists no t3.large; the entry stays, marked, and the run says so
    t3 = changes["aws us-east-1 ec2/t3.large"]
    assert t3.what == "unlisted" and t3.old == 0.0832
    assert lines["aws us-east-1 ec2/t3.large"] == (
        "    ec2/t3.large: {usd: 0.0832, unit: instance-hour, source: aws-ec2, read: 2026-11-26, unlisted: 2026-12-02}"
    )
    (finding,) = result.findings
    assert finding.key == "ec2/t3.large" and "lists no AmazonEC2 product for t3.large in us-east-1" in finding.reason
    assert result.exit_code == 1

    # only what was read changed: every other entry and every comment is byte for byte as it was
    old_lines = _entry_lines(before)
    touched = set(changes)
    assert {k for k in old_lines if old_lines[k] != lines.get(k)} == touched & set(old_lines)
    assert [line for line in before.splitlines() if line.lstrip().startswith("#")] == [
        line for line in after.splitlines() if line.lstrip().startswith("#")
    ]
    assert lines["aws us-east-1 ec2/p5.48xlarge"] == old_lines["aws us-east-1 ec2/p5.48xlarge"]  # no stack uses it
    # not asked for: factors, counts, prices no API mapping reads
    asked = {(w.cloud, w.key) for w in result.wanted}
    assert ("aws", "spot/ec2/g6") not in asked and ("gcp", "gke/default-zones-per-regional-pool") not in asked
    assert ("aws", "ec2/p5.48xlarge") not in asked and ("aws", "ec2/t3.large") in asked

    # the estimate now prices with what was read: dev's spot l4 group in us-east-1a and b: ($0.36 + $0.41) / 2
    report = estimate(synth_out, env_dir, ["dev"], catalog=load_catalog(catalog), today=TODAY)
    group = next(r for r in report.envs[0].resources if r.path == "dev/aws-gpu-l4/group/node-group")
    above = next(i for i in group.items if i.ident == "node-hours:above")
    assert above.unit_price == pytest.approx(0.385)

    # a second run with the same answers on the same day changes nothing, byte for byte
    again = refresh(synth_out, env_dir, catalog_path=catalog, today=TODAY)
    assert again.changes == [] and not again.written
    assert catalog.read_text() == after


def test_refresh_asks_for_exactly_what_the_stacks_use(synth_out: Path, env_dir: Path, catalog: Path, fakes: Fakes) -> None:
    refresh(synth_out, env_dir, ["dev"], catalog_path=catalog, today=TODAY, dry_run=True)
    types = sorted(
        {f["Value"] for r in fakes.aws.requests if r["api"] == "GetProducts" for f in r["Filters"] if f["Field"] == "instanceType"}
    )
    assert types == ["g6.xlarge", "t3.large"]  # dev's two node groups, nothing else
    spot_calls = [r for r in fakes.aws.requests if r["api"] == "DescribeSpotPriceHistory"]
    assert [r["InstanceTypes"] for r in spot_calls] == [["g6.xlarge"]]  # the spot group only
    # the billing catalog pages through each service's SKUs (3 a page here): compute has 24 SKUs, 8 pages
    compute = [r for r in fakes.gcp.requests if r["service"] == "6F81-5844-456A"]
    assert [r["pageToken"] for r in compute] == ["", "3", "6", "9", "12", "15", "18", "21"]
    assert {r["currencyCode"] for r in fakes.gcp.requests} == {"USD"}
    assert catalog.read_text() == CATALOG_FILE.read_text()  # --dry-run wrote nothing


def test_an_implausible_spot_price_is_refused_moto_plumbing(
    synth_out: Path, env_dir: Path, catalog: Path, aws: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """EC2 through a real moto server (every spot price is 0.00001 there): the call path works and
    the refresh refuses to write a spot price of 0.00001/0.8048 = 0.0000124 of on-demand."""
    calls = Calls()
    with http_server(aws_handler(aws_products(), [], calls)) as pricing_url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_PRICING", pricing_url)  # moto has no pricing service
        code = main(
            [
                "cost",
                "refresh",
                "dev",
                "--no-gcp",
                "--outdir",
                str(synth_out),
                "--env-dir",
                str(env_dir),
                "--catalog",
                str(catalog),
                "--today",
                "2026-12-02",
            ]
        )
    captured = capsys.readouterr()
    assert code == 1
    assert (
        "refused: aws us-east-1 spot/ec2/g6.xlarge@us-east-1a: implausible answer, not written: $1e-05 is 0.00001 of the on-demand $0.8048"
        in captured.err
    )
    assert "outside 0.05-1" in captured.err and "DescribeSpotPriceHistory g6.xlarge us-east-1a" in captured.err
    text = catalog.read_text()
    assert "spot/ec2/g6.xlarge@us-east-1a:" not in text  # nothing written for the zones
    assert "ec2/g6.xlarge: {usd: 0.8048, unit: instance-hour, source: aws-price-list-api" in text  # the on-demand price was
    assert "aws us-east-1 ec2/g6.xlarge: $0.8048 unchanged, re-read" in captured.out


def test_missing_credentials_or_no_cloud_is_a_usage_error_and_writes_nothing(
    synth_out: Path, env_dir: Path, catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = catalog.read_bytes()
    for var in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "GOOGLE_API_ENDPOINT",
        "GOOGLE_APPLICATION_CREDENTIALS",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role to find
    monkeypatch.setenv("NO_GCE_CHECK", "True")  # no metadata server to ask
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))  # no gcloud login
    args = ["cost", "refresh", "--outdir", str(synth_out), "--env-dir", str(env_dir), "--catalog", str(catalog)]
    assert main([*args, "--no-gcp"]) == 2
    assert "AWS: no credentials found" in capsys.readouterr().err
    assert main([*args, "--no-aws"]) == 2
    assert "GCP: no Application Default Credentials" in capsys.readouterr().err
    assert main([*args, "--no-aws", "--no-gcp"]) == 2
    assert "nothing to refresh" in capsys.readouterr().err
    assert main([*args, "--today", "yesterday"]) == 2
    assert main([*args, "nowhere"]) == 2  # an environment that does not exist
    assert catalog.read_bytes() == before


def test_wanted_skips_factors_and_counts(synth_out: Path, env_dir: Path) -> None:
    keys = {w.key for w in wanted(synth_out, env_dir, ["production"], load_catalog())}
    # production's spot burst group (g6.2xlarge in a, b, c) and its on-demand groups' commitments per type
    assert {f"spot/ec2/g6.2xlarge@us-east-1{z}" for z in "abc"} <= keys
    assert {"commit-1y/ec2/g6.2xlarge", "commit-3y/ec2/m6i.xlarge", "commit-1y/gce/g2-standard-8"} <= keys
    assert not {k for k in keys if k in ("spot/ec2/g6", "commit-3y/gce/g2", "gke/default-zones-per-regional-pool")}
    assert "spot/gce/e2-standard-4" not in keys  # production's system pool is on-demand: no spot price asked for
