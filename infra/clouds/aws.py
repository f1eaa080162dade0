"""AWS clients, made one way: boto3 with the caller's credentials (in Actions: the OIDC role), and
``AWS_ENDPOINT_URL`` honoured by boto3 itself (the tests point it at a moto server)."""

from __future__ import annotations

from typing import Any


def client(service: str, region: str | None = None) -> Any:
    import boto3

    return boto3.client(service, region_name=region)


def error_code(exc: Exception) -> str:
    """The AWS error code of a botocore ``ClientError`` ("NoSuchEntity", "404", …); "" otherwise."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
