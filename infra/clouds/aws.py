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


def github_connection(name: str, region: str) -> dict[str, Any] | None:
    """The GitHub connection called ``name`` (CodeStar Connections ``ListConnections``, the API the
    provider's ``aws_codestarconnections_connection`` data source reads; the same connections as
    CodeConnections'), or None. Its ``ConnectionStatus`` is PENDING until someone completes the
    OAuth handshake in the console (AWS CodeConnections, "Update a pending connection")."""
    client_ = client("codestar-connections", region)
    token: str | None = None
    while True:
        page = client_.list_connections(ProviderTypeFilter="GitHub", **({"NextToken": token} if token else {}))
        for connection in page.get("Connections", []):
            if connection.get("ConnectionName") == name:
                return dict(connection)
        token = page.get("NextToken")
        if not token:
            return None
