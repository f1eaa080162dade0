"""``infra smoke ENV``: after a deploy, check that what the stack declares exists and is healthy.

The expected values come from the synthesized JSON (``cdktf.out/stacks/<env>*/cdk.tf.json``), never
from a second list. AWS, with boto3: the EKS cluster (ACTIVE, its version), each managed node group (ACTIVE, min/max,
desired inside them, capacity type, instance types), each ECR repository (scan on push, immutable
tags) and the images the environment declares (present in their repository), each Lambda function
(Active, its reserved concurrency, its function URL's auth type), and ``/healthz`` of each function
URL when it can be reached (signed with SigV4 for ``AWS_IAM`` URLs). GCP, with the Google clients
(REST): the GKE cluster RUNNING, each node pool RUNNING with its autoscaling range, machine type,
spot and accelerator, each Artifact Registry repository with immutable tags. The report names what to roll
back when a check fails, and records the image digests that passed: ``infra promote`` reads them.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from environments.schema import Environment
from infra.clouds import aws
from infra.errors import InfraError
from infra.synthesized.reader import Stack, env_of, load_stacks, provider_regions

REF = re.compile(r"\$\{([a-z0-9_]+)\.([A-Za-z0-9_-]+)\.[a-z_]+\}")
ECR_URL = re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/(?P<repo>[a-z0-9._/-]+)(?P<ref>[:@].+)$")


@dataclass
class Check:
    check: str  # eks-cluster, eks-node-group, ecr-repository, image, lambda, lambda-url, health
    resource: str
    ok: bool | None  # None: skipped (said why in detail)
    detail: str = ""


@dataclass
class ImageEvidence:
    field: str  # where the environment file pins it, e.g. aws.endpoints[0] or serving
    repository: str
    reference: str  # ":tag" or "@sha256:..."
    digest: str | None  # the digest the registry resolves the reference to
    passed: bool
    running: str | None = None  # what the function reports it runs (Lambda's ResolvedImageUri), for the record


@dataclass
class SmokeReport:
    env: str
    commit: str
    synth_hash: str
    checked_at: str
    checks: list[Check] = field(default_factory=list)
    images: list[ImageEvidence] = field(default_factory=list)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.ok is False]

    @property
    def passed(self) -> bool:
        return not self.failed

    def add(self, check: str, resource: str, ok: bool | None, detail: str = "") -> bool:
        self.checks.append(Check(check, resource, ok, detail))
        return ok is not False

    def rollback(self, branch: str) -> str:
        """What to do when a check failed: revert what this deploy applied."""
        return (
            f"roll back {self.env}: revert the merge on `{branch}` (`git revert -m 1 {self.commit[:12]}` and push; the deploy "
            f"workflow applies the previous configuration), or re-run the last successful deploy of {self.env}. Failed: "
            + "; ".join(f"{c.check} {c.resource}: {c.detail}" for c in self.failed)
        )

    def markdown(self) -> str:
        lines = [
            f"### Smoke checks: {self.env} at `{self.commit[:12]}`",
            "",
            "| check | resource | result | detail |",
            "| --- | --- | --- | --- |",
        ]
        lines += [
            f"| {c.check} | `{c.resource}` | {'pass' if c.ok else 'skipped' if c.ok is None else '**FAIL**'} | {c.detail} |"
            for c in self.checks
        ]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


# --- what the stack declares ----------------------------------------------------------------------


@dataclass
class Expected:
    cluster: dict[str, Any] | None = None
    node_groups: list[dict[str, Any]] = field(default_factory=list)
    repositories: list[dict[str, Any]] = field(default_factory=list)
    functions: list[dict[str, Any]] = field(default_factory=list)  # with "url_auth" when it has a URL
    region: str | None = None
    gcp_project: str | None = None
    gke: dict[str, Any] | None = None  # name, location, pools: [{name, min, max, machine_type, spot, accelerator}]
    artifact_registries: list[dict[str, Any]] = field(default_factory=list)  # id, location, immutable


def _image(uri: str, repos: dict[str, str]) -> tuple[str | None, str]:
    """(repository name, ``:tag`` or ``@digest``) of a function's image: a literal ECR URL
    (``<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>``) or a reference to a repository."""
    m = REF.search(uri)
    if m:
        return (repos.get(m.group(2)) if m.group(1) == "aws_ecr_repository" else None), uri[m.end() :]
    m = ECR_URL.match(uri)
    return (m.group("repo"), m.group("ref")) if m else (None, uri)


def expected(outdir: Path, env: str) -> tuple[Expected, str]:
    """What ``env``'s synthesized stacks declare, read through the shared reader, and their synth hash."""
    from infra.synthesized.digest import synth_hash

    stacks = [s for s in load_stacks(outdir) if env_of(s.name) == env]
    if not stacks:
        raise InfraError(f"{outdir}: no stack of environment {env!r}; run `make synth`")
    exp = Expected()
    repos = {r.name: str(r.get("name")) for stack in stacks for r in stack.of_type("aws_ecr_repository")}
    for stack in stacks:
        regions = provider_regions(stack)
        exp.region = exp.region or regions.get("aws")
        google = stack.raw.get("provider", {}).get("google", [{}])
        if google and isinstance(google, list) and google[0].get("project"):
            exp.gcp_project = exp.gcp_project or google[0]["project"]
        _expected_gcp(stack, exp)
        for cluster in stack.of_type("aws_eks_cluster"):
            exp.cluster = {"name": cluster.get("name"), "version": cluster.get("version")}
        for group in stack.of_type("aws_eks_node_group"):
            exp.node_groups.append(
                {
                    "name": group.get("node_group_name"),
                    "min": group.get("scaling_config.min_size"),
                    "max": group.get("scaling_config.max_size"),
                    "capacity_type": group.get("capacity_type", "ON_DEMAND"),
                    "instance_types": group.get("instance_types", []),
                }
            )
        for repo in stack.of_type("aws_ecr_repository"):
            exp.repositories.append(
                {
                    "name": repo.get("name"),
                    "scan_on_push": bool(repo.get("image_scanning_configuration.scan_on_push")),
                    "mutability": repo.get("image_tag_mutability", "MUTABLE"),
                }
            )
        urls = {}
        for url in stack.of_type("aws_lambda_function_url"):
            m = REF.search(str(url.get("function_name", "")))
            urls[m.group(2) if m else url.get("function_name")] = url.get("authorization_type", "NONE")
        for fn in stack.of_type("aws_lambda_function"):
            repository, reference = _image(str(fn.get("image_uri", "")), repos)
            exp.functions.append(
                {
                    "name": fn.get("function_name"),
                    "reserved_concurrency": fn.get("reserved_concurrent_executions"),
                    "url_auth": urls.get(fn.name),
                    "repository": repository,
                    "reference": reference,
                }
            )
    digest, _ = synth_hash(stacks)
    return exp, digest


def _expected_gcp(stack: Stack, exp: Expected) -> None:
    for cluster in stack.of_type("google_container_cluster"):
        exp.gke = {"name": cluster.get("name"), "location": cluster.get("location"), "pools": []}
    for pool in stack.of_type("google_container_node_pool"):
        if exp.gke is None:
            continue
        accelerators = pool.get("node_config.guest_accelerator") or []
        exp.gke["pools"].append(
            {
                "name": pool.get("name"),
                "min": pool.get("autoscaling.min_node_count"),
                "max": pool.get("autoscaling.max_node_count"),
                "machine_type": pool.get("node_config.machine_type"),
                "spot": bool(pool.get("node_config.spot")),
                "accelerator": (accelerators[0]["type"], accelerators[0]["count"]) if accelerators else None,
            }
        )
    for repo in stack.of_type("google_artifact_registry_repository"):
        exp.artifact_registries.append(
            {
                "id": repo.get("repository_id"),
                "location": repo.get("location"),
                "immutable": bool(repo.get("docker_config.immutable_tags")),
            }
        )


# --- the checks -----------------------------------------------------------------------------------


def _check_cluster(exp: Expected, report: SmokeReport) -> None:
    from botocore.exceptions import ClientError

    if exp.cluster is None:
        return
    eks = aws.client("eks", exp.region)
    name = exp.cluster["name"]
    try:
        cluster = eks.describe_cluster(name=name)["cluster"]
    except ClientError as exc:
        report.add("eks-cluster", name, False, f"not found ({aws.error_code(exc)})")
        for group in exp.node_groups:
            report.add("eks-node-group", group["name"], False, "its cluster is missing")
        return
    problems = []
    if cluster.get("status") != "ACTIVE":
        problems.append(f"status {cluster.get('status')}, expected ACTIVE")
    if exp.cluster["version"] and cluster.get("version") != exp.cluster["version"]:
        problems.append(f"version {cluster.get('version')}, declared {exp.cluster['version']}")
    report.add("eks-cluster", name, not problems, "; ".join(problems) or f"ACTIVE, {cluster.get('version')}")
    for group in exp.node_groups:
        try:
            ng = eks.describe_nodegroup(clusterName=name, nodegroupName=group["name"])["nodegroup"]
        except ClientError as exc:
            report.add("eks-node-group", group["name"], False, f"not found ({aws.error_code(exc)})")
            continue
        sc = ng.get("scalingConfig", {})
        problems = []
        if ng.get("status") != "ACTIVE":
            problems.append(f"status {ng.get('status')}, expected ACTIVE")
        if (sc.get("minSize"), sc.get("maxSize")) != (group["min"], group["max"]):
            problems.append(f"scaling {sc.get('minSize')}..{sc.get('maxSize')}, declared {group['min']}..{group['max']}")
        desired = sc.get("desiredSize")
        if desired is not None and group["min"] is not None and not group["min"] <= desired <= group["max"]:
            problems.append(f"desired {desired} outside {group['min']}..{group['max']}")
        if ng.get("capacityType", "ON_DEMAND") != group["capacity_type"]:
            problems.append(f"capacity {ng.get('capacityType')}, declared {group['capacity_type']}")
        if group["instance_types"] and sorted(ng.get("instanceTypes") or []) != sorted(group["instance_types"]):
            problems.append(f"instance types {ng.get('instanceTypes')}, declared {group['instance_types']}")
        detail = "; ".join(problems) or f"ACTIVE, {sc.get('minSize')}..{sc.get('maxSize')} (desired {desired})"
        report.add("eks-node-group", group["name"], not problems, detail)


def _check_repositories(exp: Expected, report: SmokeReport) -> None:
    from botocore.exceptions import ClientError

    if not exp.repositories:
        return
    ecr = aws.client("ecr", exp.region)
    for repo in exp.repositories:
        try:
            found = ecr.describe_repositories(repositoryNames=[repo["name"]])["repositories"][0]
        except ClientError as exc:
            report.add("ecr-repository", repo["name"], False, f"not found ({aws.error_code(exc)})")
            continue
        problems = []
        scan = bool(found.get("imageScanningConfiguration", {}).get("scanOnPush"))
        if scan != repo["scan_on_push"]:
            problems.append(f"scan on push {scan}, declared {repo['scan_on_push']}")
        if found.get("imageTagMutability") != repo["mutability"]:
            problems.append(f"tag mutability {found.get('imageTagMutability')}, declared {repo['mutability']}")
        report.add("ecr-repository", repo["name"], not problems, "; ".join(problems) or "scan on push, immutable tags")


def _image_digest(ecr: Any, repository: str, reference: str) -> tuple[str | None, str]:
    from botocore.exceptions import ClientError

    image_id = {"imageDigest": reference[1:]} if reference.startswith("@") else {"imageTag": reference.lstrip(":")}
    try:
        details = ecr.describe_images(repositoryName=repository, imageIds=[image_id])["imageDetails"]
    except ClientError as exc:
        return None, f"{repository}{reference} not in the registry ({aws.error_code(exc)})"
    return (str(details[0]["imageDigest"]), "") if details else (None, f"{repository}{reference} not in the registry")


def _check_functions(exp: Expected, report: SmokeReport, env: Environment, health: bool, timeout: float) -> None:
    from botocore.exceptions import ClientError

    if not exp.functions:
        return
    lam = aws.client("lambda", exp.region)
    ecr = aws.client("ecr", exp.region)
    fields = {ep.name: i for i, ep in enumerate(env.aws.endpoints)} if env.aws else {}
    for fn in exp.functions:
        name = fn["name"]
        try:
            got = lam.get_function(FunctionName=name)
        except ClientError as exc:
            report.add("lambda", name, False, f"not found ({aws.error_code(exc)})")
            continue
        config = got["Configuration"]
        problems = []
        if config.get("State", "Active") != "Active":
            problems.append(f"state {config.get('State')} ({config.get('StateReason', '')})")
        if config.get("LastUpdateStatus", "Successful") == "Failed":
            problems.append(f"last update failed ({config.get('LastUpdateStatusReason', '')})")
        reserved = got.get("Concurrency", {}).get("ReservedConcurrentExecutions")
        if fn["reserved_concurrency"] is not None and reserved != fn["reserved_concurrency"]:
            problems.append(f"reserved concurrency {reserved}, declared {fn['reserved_concurrency']}")
        report.add("lambda", name, not problems, "; ".join(problems) or f"Active, reserved concurrency {reserved}")
        url = None
        if fn["url_auth"] is not None:
            try:
                url_config = lam.get_function_url_config(FunctionName=name)
            except ClientError as exc:
                report.add("lambda-url", name, False, f"no function URL ({aws.error_code(exc)})")
            else:
                url = url_config["FunctionUrl"]
                auth = url_config.get("AuthType")
                ok = auth == fn["url_auth"]
                report.add("lambda-url", name, ok, f"auth {auth}" + ("" if ok else f", declared {fn['url_auth']}"))
        # the image: in its repository, and the digest the function runs
        if fn["repository"]:
            digest, problem = _image_digest(ecr, fn["repository"], fn["reference"])
            resolved = str(got.get("Code", {}).get("ResolvedImageUri", ""))
            running = resolved.rpartition("@")[2] if "@" in resolved else None
            ok = report.add("image", f"{fn['repository']}{fn['reference']}", digest is not None, problem or f"digest {digest}")
            short = name.removeprefix(env.resource_name(""))
            where = f"aws.endpoints[{fields[short]}]" if short in fields else f"lambda {name}"
            report.images.append(ImageEvidence(where, fn["repository"], fn["reference"], digest, ok and not problems, running))
        if health:
            _health(url, fn["url_auth"], name, exp.region, report, timeout)


def _health(url: str | None, auth: str | None, name: str, region: str | None, report: SmokeReport, timeout: float) -> None:
    import urllib.error
    import urllib.request

    if url is None:
        return
    target = url.rstrip("/") + "/healthz"
    headers: dict[str, str] = {}
    if auth == "AWS_IAM":
        import boto3
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        credentials = boto3.Session().get_credentials()
        if credentials is None:
            report.add("health", name, None, "skipped: no AWS credentials to sign the request")
            return
        request = AWSRequest(method="GET", url=target)
        SigV4Auth(credentials.get_frozen_credentials(), "lambda", region or "us-east-1").add_auth(request)
        headers = dict(request.headers.items())
    try:
        with urllib.request.urlopen(urllib.request.Request(target, headers=headers), timeout=timeout) as resp:
            body = resp.read(2048).decode(errors="replace")
            report.add("health", name, resp.status == 200, f"GET /healthz {resp.status} {body[:80]}")
    except urllib.error.HTTPError as exc:
        report.add("health", name, False, f"GET /healthz {exc.code}")
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        report.add("health", name, None, f"skipped: {target} not reachable from here ({getattr(exc, 'reason', exc)})")


def _check_serving_image(env: Environment, exp: Expected, report: SmokeReport) -> None:
    """The image the environment's Kubernetes service runs (its pin in the environment file) is in
    the environment's ECR repository."""
    if env.serving is None or env.aws is None or env.aws.cluster is None:
        return
    repository = env.resource_name(env.serving.registry)
    digest, problem = _image_digest(aws.client("ecr", exp.region), repository, env.serving.image_ref)
    ok = report.add("image", f"{repository}{env.serving.image_ref}", digest is not None, problem or f"digest {digest}")
    report.images.append(ImageEvidence("serving", repository, env.serving.image_ref, digest, ok))


def _check_gke(exp: Expected, report: SmokeReport) -> None:
    """The GKE cluster RUNNING, each node pool RUNNING with its autoscaling, machine, spot and GPU."""
    from google.api_core import exceptions
    from google.cloud import container_v1

    from infra.clouds.gcp import client

    if exp.gke is None or exp.gcp_project is None:
        return
    gke = client(container_v1.ClusterManagerClient)
    name = f"projects/{exp.gcp_project}/locations/{exp.gke['location']}/clusters/{exp.gke['name']}"
    try:
        cluster = gke.get_cluster(name=name)
    except exceptions.GoogleAPICallError as exc:
        report.add("gke-cluster", exp.gke["name"], False, f"not found ({exc.code})")
        return
    status = container_v1.Cluster.Status(cluster.status).name
    report.add("gke-cluster", exp.gke["name"], status == "RUNNING", f"{status}, {cluster.current_master_version}")
    pools = {p.name: p for p in cluster.node_pools}
    for want in exp.gke["pools"]:
        pool = pools.get(want["name"])
        if pool is None:
            report.add("gke-node-pool", want["name"], False, "not in the cluster")
            continue
        problems = []
        pool_status = container_v1.NodePool.Status(pool.status).name
        if pool_status != "RUNNING":
            problems.append(f"status {pool_status}, expected RUNNING")
        auto = pool.autoscaling
        if not auto.enabled or (auto.min_node_count, auto.max_node_count) != (want["min"], want["max"]):
            problems.append(
                f"autoscaling {'on' if auto.enabled else 'off'} {auto.min_node_count}..{auto.max_node_count}, declared {want['min']}..{want['max']}"
            )
        if want["machine_type"] and pool.config.machine_type != want["machine_type"]:
            problems.append(f"machine {pool.config.machine_type}, declared {want['machine_type']}")
        if bool(pool.config.spot) != want["spot"]:
            problems.append(f"spot {pool.config.spot}, declared {want['spot']}")
        got = [(a.accelerator_type, a.accelerator_count) for a in pool.config.accelerators]
        if want["accelerator"] and tuple(want["accelerator"]) not in got:
            problems.append(f"accelerators {got}, declared {want['accelerator']}")
        detail = "; ".join(problems) or f"RUNNING, {auto.min_node_count}..{auto.max_node_count}"
        report.add("gke-node-pool", want["name"], not problems, detail)


def _check_artifact_registries(exp: Expected, report: SmokeReport) -> None:
    from google.api_core import exceptions
    from google.cloud import artifactregistry_v1

    from infra.clouds.gcp import client

    if not exp.artifact_registries or exp.gcp_project is None:
        return
    ar = client(artifactregistry_v1.ArtifactRegistryClient)
    for want in exp.artifact_registries:
        name = f"projects/{exp.gcp_project}/locations/{want['location']}/repositories/{want['id']}"
        try:
            repo = ar.get_repository(name=name)
        except exceptions.GoogleAPICallError as exc:
            report.add("artifact-registry", want["id"], False, f"not found ({exc.code})")
            continue
        immutable = bool(repo.docker_config.immutable_tags)
        ok = immutable == want["immutable"]
        report.add(
            "artifact-registry", want["id"], ok, "immutable tags" if ok else f"immutable tags {immutable}, declared {want['immutable']}"
        )


def _commit() -> str:
    from infra.git import ROOT, git

    try:
        return git(ROOT, "rev-parse", "HEAD").strip()
    except subprocess.CalledProcessError:
        return "unknown"


def smoke(
    env: Environment,
    outdir: Path,
    *,
    health: bool = True,
    timeout: float = 10.0,
    commit: str | None = None,
    clouds: tuple[str, ...] = ("aws", "gcp"),
) -> SmokeReport:
    exp, digest = expected(outdir, env.name)
    report = SmokeReport(env.name, commit or _commit(), digest, datetime.now(UTC).isoformat(timespec="seconds"))
    if "aws" in clouds:
        _check_cluster(exp, report)
        _check_repositories(exp, report)
        _check_functions(exp, report, env, health, timeout)
        _check_serving_image(env, exp, report)
    if "gcp" in clouds and (exp.gke or exp.artifact_registries):
        from google.auth.exceptions import DefaultCredentialsError

        try:
            _check_gke(exp, report)
            _check_artifact_registries(exp, report)
        except DefaultCredentialsError as exc:
            raise InfraError(
                f"no Google credentials for the GCP checks ({exc}); authenticate (in Actions: google-github-actions/auth) or pass --cloud aws"
            ) from None
    return report


def load_evidence(path: Path) -> dict[str, Any]:
    """A smoke record written by ``infra smoke --record`` (the evidence ``infra promote`` reads)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InfraError(f"{path}: not a smoke record ({exc})") from None
    if not isinstance(data, dict) or not {"env", "commit", "checks", "images", "passed"} <= set(data):
        raise InfraError(f"{path}: not a smoke record (written by `infra smoke ENV --record FILE`)")
    return data
