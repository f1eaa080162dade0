"""The AWS checks of preflight, with boto3 (``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>``
honoured by botocore: https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html).

=====================  ==========================================================================
check                  API call
=====================  ==========================================================================
aws-account            sts GetCallerIdentity
aws-zone               ec2 DescribeAvailabilityZones (name → AZ ID; EKS's disallowed IDs)
aws-instance-offering  ec2 DescribeInstanceTypeOfferings (LocationType availability-zone-id)
aws-vcpu-quota         ec2 DescribeInstanceTypes (vCPUs); service-quotas GetServiceQuota, else
                       GetAWSDefaultServiceQuota
aws-lambda-concurrency lambda GetAccountSettings, GetFunctionConcurrency
aws-eks-version        eks DescribeClusterVersions
aws-github-connection  codestar-connections ListConnections (the runner's connection AVAILABLE)
aws-bootstrap          s3 HeadBucket + GetBucketEncryption, kms DescribeKey, iam
                       GetOpenIDConnectProvider / GetRole / GetPolicy
aws-image (--images)   ecr DescribeImages (imageManifestMediaType for Lambda)
=====================  ==========================================================================
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from environments.schema import EksNodeGroup, Environment
from environments.schema.identity import GITHUB_OIDC_HOST
from infra.clouds import aws
from infra.preflight.report import Report, facts

BOOTSTRAP_FIX = "run `infra bootstrap {env}` with credentials of account {account}"


def _facts() -> dict[str, Any]:
    data: dict[str, Any] = facts()["aws"]
    return data


def _code(exc: Exception) -> str:
    return aws.error_code(exc)


def check_aws(env: Environment, report: Report, *, images: bool = False) -> None:
    assert env.aws is not None
    region = env.aws.region
    report.run("aws-account", env.aws.account_id, lambda: _account(env, report), "use credentials of the environment's account")
    zone_ids: dict[str, str] = {}
    report.run("aws-zone", region, lambda: zone_ids.update(_zones(env, report)), "allow ec2:DescribeAvailabilityZones")
    if env.aws.cluster:
        groups = [("system", env.aws.cluster.system_node_group), *[(g.name, g) for g in env.aws.cluster.gpu_node_groups]]
        report.run(
            "aws-instance-offering", region, lambda: _offerings(env, groups, zone_ids, report), "allow ec2:DescribeInstanceTypeOfferings"
        )
        report.run(
            "aws-vcpu-quota",
            region,
            lambda: _vcpu_quotas(env, groups, report),
            "allow ec2:DescribeInstanceTypes and servicequotas:GetServiceQuota",
        )
        report.run(
            "aws-eks-version", env.aws.cluster.kubernetes_version, lambda: _eks_version(env, report), "allow eks:DescribeClusterVersions"
        )
    else:
        for name in ("aws-instance-offering", "aws-vcpu-quota", "aws-eks-version"):
            report.skip(name, region, "no aws.cluster")
    if env.aws.endpoints:
        report.run("aws-lambda-concurrency", region, lambda: _lambda(env, report), "allow lambda:GetAccountSettings")
    else:
        report.skip("aws-lambda-concurrency", region, "no aws.endpoints")
    if env.has_ci_runner:
        report.run(
            "aws-github-connection",
            env.github_connection_name,
            lambda: _connection(env, report),
            "allow codestar-connections:ListConnections",
        )
    else:
        report.skip("aws-github-connection", region, "no CodeBuild runner (no EKS cluster or no ci section)")
    _bootstrap_outputs(env, report)
    if images:
        _images(env, report)


# --- the runner's GitHub connection -------------------------------------------------------------------


def _connection(env: Environment, report: Report) -> None:
    """The CodeBuild project's source (and its webhook) need the connection AVAILABLE; a PENDING one
    fails the apply ("Could not find access token for server type github")."""
    assert env.aws is not None
    name = env.github_connection_name
    found = aws.github_connection(name, env.aws.region)
    if found is None:
        report.fail("aws-github-connection", name, "missing", BOOTSTRAP_FIX.format(env=env.name, account=env.aws.account_id))
    elif found.get("ConnectionStatus") != "AVAILABLE":
        report.fail(
            "aws-github-connection",
            name,
            str(found.get("ConnectionStatus")),
            "an AWS admin with a GitHub org admin: console › Developer Tools › Settings › Connections › "
            f"{name} › Update pending connection (install the AWS Connector for GitHub app on {env.ci.repository if env.ci else 'the repository'})",
        )
    else:
        report.ok("aws-github-connection", name, "AVAILABLE")


# --- account and zones ------------------------------------------------------------------------------


def _account(env: Environment, report: Report) -> None:
    assert env.aws is not None
    account = aws.client("sts", env.aws.region).get_caller_identity()["Account"]
    if account == env.aws.account_id:
        report.ok("aws-account", env.aws.account_id, "the credentials are of this account")
    else:
        report.fail(
            "aws-account", env.aws.account_id, f"the credentials are of account {account}",
            f"use credentials of account {env.aws.account_id} (aws sts get-caller-identity), or correct aws.account_id",
        )  # fmt: skip


def _zones(env: Environment, report: Report) -> dict[str, str]:
    assert env.aws is not None
    from botocore.exceptions import ClientError

    ec2 = aws.client("ec2", env.aws.region)
    disallowed = set(_facts()["eks_disallowed_zone_ids"])
    ids: dict[str, str] = {}
    for zone in env.aws.network.zones:
        try:
            found = ec2.describe_availability_zones(ZoneNames=[zone])["AvailabilityZones"]
        except ClientError as exc:
            if _code(exc) not in ("InvalidParameterValue", "InvalidZone.NotFound"):
                raise
            found = []
        if not found:
            report.fail(
                "aws-zone",
                zone,
                "not a zone of this account",
                f"choose zones of {env.aws.region}: aws ec2 describe-availability-zones --region {env.aws.region}",
            )
            continue
        zone_id = found[0]["ZoneId"]
        ids[zone] = zone_id
        if zone_id in disallowed:
            report.fail(
                "aws-zone", zone, f"{zone} is {zone_id}, where EKS does not accept cluster subnets",
                f"replace {zone} in aws.network.zones with a zone that is not {zone_id} (aws ec2 describe-availability-zones --region {env.aws.region})",
            )  # fmt: skip
        else:
            report.ok("aws-zone", zone, zone_id)
    return ids


def _offerings(env: Environment, groups: list[tuple[str, EksNodeGroup]], zone_ids: dict[str, str], report: Report) -> None:
    assert env.aws is not None
    if not zone_ids:
        report.skip("aws-instance-offering", env.aws.region, "no zone resolved (see aws-zone)")
        return
    ec2 = aws.client("ec2", env.aws.region)
    types = sorted({t for _, g in groups for t in g.instance_types})
    offered: set[tuple[str, str]] = set()
    paginator = ec2.get_paginator("describe_instance_type_offerings")
    for page in paginator.paginate(
        LocationType="availability-zone-id",
        Filters=[{"Name": "instance-type", "Values": types}, {"Name": "location", "Values": sorted(set(zone_ids.values()))}],
    ):
        offered |= {(o["InstanceType"], o["Location"]) for o in page["InstanceTypeOfferings"]}
    by_id = {v: k for k, v in zone_ids.items()}
    for name, group in groups:
        for itype in group.instance_types:
            missing = [z for z in zone_ids.values() if (itype, z) not in offered]  # every group uses every zone's subnet
            subject = f"{name}: {itype}"
            if missing:
                where = ", ".join(f"{z} ({by_id[z]})" for z in missing)
                report.fail(
                    "aws-instance-offering", subject, f"not offered in {where}",
                    f"choose an instance type offered in every zone of aws.network.zones, or drop {by_id[missing[0]]}: aws ec2 "
                    f"describe-instance-type-offerings --location-type availability-zone-id --filters Name=instance-type,Values={itype}",
                )  # fmt: skip
            else:
                report.ok("aws-instance-offering", subject, f"offered in {len(zone_ids)} zones")


# --- vCPU quotas ---------------------------------------------------------------------------------------


def family_class(instance_type: str) -> str | None:
    """``gpu`` (G and VT), ``p`` or ``standard``, from the family's letters (``g6.xlarge`` → g); None
    for the families with quotas of their own (inf, trn, x, f, hpc, …), which are not checked."""
    letters = re.match(r"[a-z]+", instance_type)
    family = letters.group(0) if letters else ""
    return next((str(cls) for cls, spec in _facts()["vcpu_quotas"].items() if family in spec["families"]), None)


def quota_value(region: str, service: str, code: str) -> tuple[float, str]:
    """The applied quota, or AWS's default when none was ever applied (GetServiceQuota answers
    NoSuchResourceException then)."""
    from botocore.exceptions import ClientError

    sq = aws.client("service-quotas", region)
    try:
        return float(sq.get_service_quota(ServiceCode=service, QuotaCode=code)["Quota"]["Value"]), "applied"
    except ClientError as exc:
        if _code(exc) != "NoSuchResourceException":
            raise
    return float(sq.get_aws_default_service_quota(ServiceCode=service, QuotaCode=code)["Quota"]["Value"]), "AWS default"


def _vcpu_quotas(env: Environment, groups: list[tuple[str, EksNodeGroup]], report: Report) -> None:
    assert env.aws is not None
    region = env.aws.region
    ec2 = aws.client("ec2", region)
    types = sorted({t for _, g in groups for t in g.instance_types})
    vcpus = {
        t["InstanceType"]: int(t["VCpuInfo"]["DefaultVCpus"]) for t in ec2.describe_instance_types(InstanceTypes=types)["InstanceTypes"]
    }
    need: dict[tuple[str, str], tuple[int, list[str]]] = {}
    for name, group in groups:
        classes = {family_class(t) for t in group.instance_types}
        if None in classes or len(classes) != 1:
            report.skip("aws-vcpu-quota", name, f"{group.instance_types}: no single vCPU quota class (G/VT, P or Standard) is checked")
            continue
        cls = classes.pop()
        assert cls is not None
        capacity = "spot" if group.capacity == "spot" else "on_demand"
        code = _facts()["vcpu_quotas"][cls][capacity]
        at_max = group.max * max(vcpus[t] for t in group.instance_types)  # the largest type of the group, at max size
        total, names = need.get((cls, code), (0, []))
        need[(cls, code)] = (total + at_max, [*names, name])
    for (_cls, code), (total, names) in sorted(need.items()):
        value, kind = quota_value(region, "ec2", code)
        subject = f"{code} ({', '.join(names)})"
        if value >= total:
            report.ok("aws-vcpu-quota", subject, f"{total} vCPUs at max, quota {value:g} ({kind})")
        else:
            report.fail(
                "aws-vcpu-quota", subject, f"{total} vCPUs at max size, the quota is {value:g} ({kind})",
                f"request {total} vCPUs: aws service-quotas request-service-quota-increase --region {region} --service-code ec2 "
                f"--quota-code {code} --desired-value {total} (console: Service Quotas > Amazon EC2)",
            )  # fmt: skip


# --- Lambda and EKS ----------------------------------------------------------------------------------


def _lambda(env: Environment, report: Report) -> None:
    assert env.aws is not None
    from botocore.exceptions import ClientError

    client = aws.client("lambda", env.aws.region)
    limits = client.get_account_settings()["AccountLimit"]
    unreserved = int(limits["UnreservedConcurrentExecutions"])
    wanted = 0
    for ep in env.aws.endpoints:
        name = env.resource_name(ep.name)
        try:
            already = int(client.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions") or 0)
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
            already = 0
        wanted += max(ep.reserved_concurrency - already, 0)  # a function already reserving counts once
    floor = int(_facts()["lambda_min_unreserved"])
    left = unreserved - wanted
    subject = f"{len(env.aws.endpoints)} endpoint(s), {sum(e.reserved_concurrency for e in env.aws.endpoints)} reserved"
    if left >= floor:
        report.ok("aws-lambda-concurrency", subject, f"{unreserved} unreserved now, {left} after (at least {floor})")
    else:
        limit = int(limits["ConcurrentExecutions"]) + (floor - left)
        report.fail(
            "aws-lambda-concurrency", subject,
            f"reserving {wanted} leaves {left} unreserved of {limits['ConcurrentExecutions']}; Lambda keeps at least {floor}",
            f"request Concurrent executions >= {limit}: aws service-quotas request-service-quota-increase --region {env.aws.region} "
            f"--service-code lambda --quota-code {_facts()['lambda_concurrency_quota']} --desired-value {limit}, or lower reserved_concurrency",
        )  # fmt: skip


def _eks_version(env: Environment, report: Report) -> None:
    assert env.aws is not None and env.aws.cluster is not None
    cluster = env.aws.cluster
    version = cluster.kubernetes_version
    versions = aws.client("eks", env.aws.region).describe_cluster_versions().get("clusterVersions", [])
    field_name = "endOfExtendedSupportDate" if cluster.support_type == "EXTENDED" else "endOfStandardSupportDate"
    days = int(_facts()["eks_support_days"])
    horizon = datetime.now(UTC) + timedelta(days=days)

    def end(v: dict[str, Any]) -> datetime | None:
        value = v.get(field_name)
        if isinstance(value, str):
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return value.astimezone(UTC) if isinstance(value, datetime) else None

    supported = sorted(
        (v for v in versions if (e := end(v)) and e > horizon), key=lambda v: [int(x) for x in v["clusterVersion"].split(".")]
    )
    suggestion = f"set aws.cluster.kubernetes_version to {supported[-1]['clusterVersion']}" if supported else "choose a supported version"
    mine = next((v for v in versions if v.get("clusterVersion") == version), None)
    support = "extended" if cluster.support_type == "EXTENDED" else "standard"
    if mine is None:
        report.fail("aws-eks-version", version, "EKS does not offer this version", f"{suggestion} (aws eks describe-cluster-versions)")
        return
    ends = end(mine)
    if ends is None or ends <= horizon:
        when = ends.date().isoformat() if ends else "unknown"
        report.fail(
            "aws-eks-version", version, f"{support} support ends {when}, within {days} days",
            f"{suggestion} (EKS upgrades a cluster at the end of its support, and the next plan would try to downgrade it)",
        )  # fmt: skip
    else:
        report.ok("aws-eks-version", version, f"{support} support until {ends.date().isoformat()}")


# --- what bootstrap made --------------------------------------------------------------------------------


def _bootstrap_outputs(env: Environment, report: Report) -> None:
    assert env.aws is not None
    fix = BOOTSTRAP_FIX.format(env=env.name, account=env.aws.account_id)
    iam = aws.client("iam", None)

    def exists(what: str, call: Any, missing: tuple[str, ...] = ("NoSuchEntity",)) -> None:
        from botocore.exceptions import ClientError

        try:
            call()
        except ClientError as exc:
            if _code(exc) not in missing:
                raise
            report.fail("aws-bootstrap", what, "missing", fix)
        else:
            report.ok("aws-bootstrap", what, "exists")

    report.run(
        "aws-bootstrap", "OIDC provider",
        lambda: exists(f"OIDC provider {GITHUB_OIDC_HOST}", lambda: iam.get_open_id_connect_provider(OpenIDConnectProviderArn=env.github_oidc_provider_arn())),
        fix,
    )  # fmt: skip
    arn = str(env.permissions_boundary_arn())  # the aws section is there: these are the AWS checks
    report.run(
        "aws-bootstrap",
        "boundary",
        lambda: exists(f"permissions boundary {arn.rsplit('/', 1)[1]}", lambda: iam.get_policy(PolicyArn=arn)),
        fix,
    )
    for name in (env.github_role_name("deploy"), env.github_role_name("plan"), env.resource_name("break-glass")):
        report.run("aws-bootstrap", name, lambda name=name: exists(f"role {name}", lambda: iam.get_role(RoleName=name)), fix)  # type: ignore[misc]
    if env.state.backend == "s3":
        report.run("aws-bootstrap", f"s3://{env.state.bucket}", lambda: _state_bucket(env, report, fix), fix)


def _state_bucket(env: Environment, report: Report, fix: str) -> None:
    from botocore.exceptions import ClientError

    region = env.state_region
    what = f"s3://{env.state.bucket}"
    s3, kms = aws.client("s3", region), aws.client("kms", region)
    try:
        s3.head_bucket(Bucket=env.state.bucket)
        rules = s3.get_bucket_encryption(Bucket=env.state.bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    except ClientError as exc:
        if _code(exc) not in ("404", "NoSuchBucket", "NotFound", "ServerSideEncryptionConfigurationNotFoundError"):
            raise
        report.fail(
            "aws-bootstrap", what, "missing" if _code(exc) != "ServerSideEncryptionConfigurationNotFoundError" else "not encrypted", fix
        )
        return
    try:
        key = kms.describe_key(KeyId=env.state_key_alias)["KeyMetadata"]
    except ClientError as exc:
        if _code(exc) != "NotFoundException":
            raise
        report.fail("aws-bootstrap", env.state_key_alias, "missing", fix)
        return
    used = rules[0].get("ApplyServerSideEncryptionByDefault", {}).get("KMSMasterKeyID")
    if used in (key["Arn"], key["KeyId"], env.state_key_alias):
        report.ok("aws-bootstrap", what, f"SSE-KMS {env.state_key_alias}")
    else:
        report.fail("aws-bootstrap", what, f"encrypted with {used or 'aws/s3'}, not {env.state_key_alias}", fix)


# --- images -------------------------------------------------------------------------------------------


def _images(env: Environment, report: Report) -> None:
    assert env.aws is not None
    pins: list[tuple[str, str, Any, bool]] = []  # field, repository, ref, lambda
    if env.serving and env.aws.cluster:
        pins.append(("serving", env.serving.registry, env.serving, False))
    for i, ep in enumerate(env.aws.endpoints):
        pins.append((f"aws.endpoints[{i}]", ep.repository, ep, True))
    if not pins:
        report.skip("aws-image", env.aws.region, "the environment pins no image on AWS")
    ecr = aws.client("ecr", env.aws.region)
    index_types = set(_facts()["lambda_index_media_types"])
    for field, registry, ref, for_lambda in pins:
        repository = env.resource_name(registry)
        image_id = {"imageDigest": ref.image_digest} if ref.image_digest else {"imageTag": ref.image_tag}
        subject = f"{field}: {repository}{ref.image_ref}"
        url = f"{env.image_repository('aws', registry)}{ref.image_ref}"
        push = f"build and push it: docker buildx build --push {'--provenance=false --sbom=false ' if for_lambda else ''}-t {url} ."

        def one(subject: str = subject, repository: str = repository, image_id: dict[str, str] = image_id, push: str = push,
                for_lambda: bool = for_lambda) -> None:  # fmt: skip
            from botocore.exceptions import ClientError

            try:
                details = ecr.describe_images(repositoryName=repository, imageIds=[image_id])["imageDetails"]
            except ClientError as exc:
                if _code(exc) not in ("ImageNotFoundException", "RepositoryNotFoundException"):
                    raise
                what = (
                    "no repository (apply the registries stack first)"
                    if _code(exc) == "RepositoryNotFoundException"
                    else "not in the repository"
                )
                report.fail("aws-image", subject, what, push)
                return
            media = details[0].get("imageManifestMediaType", "")
            if for_lambda and media in index_types:
                report.fail(
                    "aws-image", subject, f"an image index ({media}): Lambda runs single-platform image manifests only",
                    f"rebuild without attestations (docker/buildx#1533): {push}",
                )  # fmt: skip
            else:
                report.ok("aws-image", subject, details[0].get("imageDigest", ""))

        report.run("aws-image", subject, one, "allow ecr:DescribeImages")
