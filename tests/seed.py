"""Seed a moto server with what an environment's synthesized stacks declare (as a deploy would
leave it), read from the same synthesized JSON that ``infra smoke`` reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3

from infra.smoke import expected

TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
)


def push_image(ecr: Any, repository: str, tag: str) -> str:
    """Put an image manifest under ``tag``; return its digest."""
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023, "digest": "sha256:" + "a" * 64},
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": 32654,
                    "digest": "sha256:" + tag.encode().hex()[:64].ljust(64, "0"),
                }
            ],
        }
    )
    return str(ecr.put_image(repositoryName=repository, imageManifest=manifest, imageTag=tag)["image"]["imageId"]["imageDigest"])


def seed(outdir: Path, env: str, serving_ref: str | None = None) -> dict[str, Any]:
    """Create the cluster, node groups, repositories, images and functions ``env`` declares."""
    exp, _ = expected(outdir, env)
    region = exp.region
    iam = boto3.client("iam")
    role = iam.create_role(RoleName=f"{env}-seed", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    eks = boto3.client("eks", region_name=region)
    if exp.cluster:
        eks.create_cluster(
            name=exp.cluster["name"],
            version=exp.cluster["version"],
            roleArn=role,
            resourcesVpcConfig={"subnetIds": ["subnet-1", "subnet-2"]},
        )
        for group in exp.node_groups:
            eks.create_nodegroup(
                clusterName=exp.cluster["name"],
                nodegroupName=group["name"],
                nodeRole=role,
                subnets=["subnet-1"],
                scalingConfig={"minSize": group["min"], "maxSize": group["max"], "desiredSize": group["min"]},
                capacityType=group["capacity_type"],
                instanceTypes=group["instance_types"],
            )
    ecr = boto3.client("ecr", region_name=region)
    digests: dict[str, str] = {}
    for repo in exp.repositories:
        ecr.create_repository(
            repositoryName=repo["name"],
            imageScanningConfiguration={"scanOnPush": repo["scan_on_push"]},
            imageTagMutability=repo["mutability"],
        )
    lam = boto3.client("lambda", region_name=region)
    for fn in exp.functions:
        tag = fn["reference"].lstrip(":")
        digests[fn["name"]] = push_image(ecr, fn["repository"], tag)
        uri = f"123456789012.dkr.ecr.{region}.amazonaws.com/{fn['repository']}:{tag}"
        lam.create_function(FunctionName=fn["name"], Role=role, PackageType="Image", Code={"ImageUri": uri})
        if fn["reserved_concurrency"] is not None:
            lam.put_function_concurrency(FunctionName=fn["name"], ReservedConcurrentExecutions=fn["reserved_concurrency"])
        if fn["url_auth"]:
            lam.create_function_url_config(FunctionName=fn["name"], AuthType=fn["url_auth"])
    if serving_ref is not None:
        repository, tag = serving_ref.split(":")
        digests["serving"] = push_image(ecr, repository, tag)
    return {"expected": exp, "digests": digests}
