"""AWS for the tests: moto answers most calls; this module

* gives boto3 credentials that moto maps to a chosen account (:func:`moto_credentials`: an access
  key created in that account, so ``sts get-caller-identity`` answers the environment's account), and
* serves, from seeded data, the three calls moto 5.2 does not implement (:class:`AwsGaps`):
  Service Quotas ``GetServiceQuota`` / ``GetAWSDefaultServiceQuota`` (JSON protocol,
  ``X-Amz-Target: ServiceQuotasV20190624.*``), Lambda ``GetAccountSettings``
  (``GET /2016-08-19/account-settings``) and ``GetFunctionConcurrency``
  (``GET /2019-09-30/functions/{name}/concurrency``), and EKS ``DescribeClusterVersions``
  (``GET /cluster-versions``), and CodeStar Connections ``ListConnections`` / ``CreateConnection``
  (JSON 1.0, ``X-Amz-Target: CodeStar_connections_20191201.*``). Point boto3 at it per service with
  ``AWS_ENDPOINT_URL_SERVICE_QUOTAS``, ``AWS_ENDPOINT_URL_LAMBDA``, ``AWS_ENDPOINT_URL_EKS``,
  ``AWS_ENDPOINT_URL_CODESTAR_CONNECTIONS`` (botocore's service-specific endpoints,
  https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html); shapes from botocore's
  service models (``botocore/data/{service-quotas,lambda,eks,codestar-connections}``).
"""

from __future__ import annotations

import http.server
import json
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.servers import http_server


def moto_credentials(moto_url: str, account_id: str) -> tuple[str, str]:
    """An access key of an IAM user in ``account_id`` on the moto server at ``moto_url``."""
    import boto3

    iam = boto3.client("iam", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")

    def pick_account(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = account_id

    iam.meta.events.register("before-sign.iam.*", pick_account)
    iam.create_user(UserName="bootstrapper")
    key = iam.create_access_key(UserName="bootstrapper")["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


@dataclass
class AwsGaps:
    """Seeded answers: quotas by (service code, quota code) as (applied, default); Lambda's account
    limits and per-function reserved concurrency; EKS versions (``clusterVersions`` items)."""

    quotas: dict[tuple[str, str], tuple[float | None, float]] = field(default_factory=dict)
    concurrent_executions: int = 1000
    reserved: dict[str, int] = field(default_factory=dict)  # function name -> reserved concurrency
    cluster_versions: list[dict[str, Any]] = field(default_factory=list)
    connections: dict[str, str] = field(default_factory=dict)  # GitHub connection name -> status
    requests: list[str] = field(default_factory=list)

    def reset(self) -> None:
        """Back to an empty seed (a server started once for a module serves one state object)."""
        self.__init__()  # type: ignore[misc]


class _Handler(http.server.BaseHTTPRequestHandler):
    gaps: AwsGaps

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any, error: str | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1" if error is None else "application/json")
        if error:
            self.send_header("x-amzn-ErrorType", error)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        target = self.headers.get("X-Amz-Target", "")
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        self.gaps.requests.append(target)
        operation = target.rsplit(".", 1)[-1]
        if target.startswith("com.amazonaws.codestar.connections."):
            self._connections(operation, body)
            return
        key = (body.get("ServiceCode", ""), body.get("QuotaCode", ""))
        if operation not in ("GetServiceQuota", "GetAWSDefaultServiceQuota") or key not in self.gaps.quotas:
            self._send(400, {"__type": "NoSuchResourceException", "message": f"quota {key} not found"}, "NoSuchResourceException")
            return
        applied, default = self.gaps.quotas[key]
        value = default if operation == "GetAWSDefaultServiceQuota" else applied
        if value is None:  # never changed: GetServiceQuota has no applied value (AWS answers NoSuchResource)
            self._send(400, {"__type": "NoSuchResourceException", "message": "no applied quota"}, "NoSuchResourceException")
            return
        quota = {"ServiceCode": key[0], "QuotaCode": key[1], "QuotaName": key[1], "Value": value, "Unit": "None", "Adjustable": True}
        self._send(200, {"Quota": quota})

    def _connections(self, operation: str, body: dict[str, Any]) -> None:
        arn = "arn:aws:codestar-connections:us-east-1:111111111111:connection/{}"
        if operation == "CreateConnection":
            name = body["ConnectionName"]
            if name in self.gaps.connections:
                self._send(400, {"__type": "ResourceUnavailableException", "message": "exists"}, "ResourceUnavailableException")
                return
            self.gaps.connections[name] = "PENDING"
            self._send(200, {"ConnectionArn": arn.format(name), "Tags": body.get("Tags", [])})
        elif operation == "ListConnections":
            items = [
                {
                    "ConnectionName": n,
                    "ConnectionArn": arn.format(n),
                    "ProviderType": "GitHub",
                    "OwnerAccountId": "111111111111",
                    "ConnectionStatus": st,
                }
                for n, st in self.gaps.connections.items()
            ]
            self._send(200, {"Connections": items})
        else:
            self._send(400, {"__type": "UnsupportedOperationException", "message": operation}, "UnsupportedOperationException")

    def do_GET(self) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(parsed.query)
        self.gaps.requests.append(parsed.path)
        if parsed.path.rstrip("/") == "/2016-08-19/account-settings":
            reserved = sum(self.gaps.reserved.values())
            limit = {"ConcurrentExecutions": self.gaps.concurrent_executions,
                     "UnreservedConcurrentExecutions": self.gaps.concurrent_executions - reserved}  # fmt: skip
            self._send(200, {"AccountLimit": limit, "AccountUsage": {"FunctionCount": len(self.gaps.reserved)}})
        elif parsed.path.startswith("/2019-09-30/functions/") and parsed.path.endswith("/concurrency"):
            name = urllib.parse.unquote(parsed.path.split("/")[3])
            if name in self.gaps.reserved:
                self._send(200, {"ReservedConcurrentExecutions": self.gaps.reserved[name]})
            else:
                self._send(404, {"Type": "User", "message": f"Function not found: {name}"}, "ResourceNotFoundException")
        elif parsed.path == "/cluster-versions":
            wanted = query.get("clusterVersions", [])
            versions = [v for v in self.gaps.cluster_versions if not wanted or v["clusterVersion"] in wanted]
            self._send(200, {"clusterVersions": versions})
        else:
            self._send(404, {"message": f"no route {parsed.path}"}, "ResourceNotFoundException")


@contextmanager
def aws_gaps(gaps: AwsGaps) -> Iterator[str]:
    """Serve ``gaps`` on 127.0.0.1; yields the endpoint URL."""
    handler = type("AwsGapsHandler", (_Handler,), {"gaps": gaps})
    with http_server(handler) as url:
        yield url
