"""A local fake of the Google REST APIs bootstrap and preflight call, answering from (and writing
to) seeded in-memory data: one server for every API, as ``GOOGLE_API_ENDPOINT`` makes the clients
send every call to one base URL (the paths do not collide).

Seed a :class:`GoogleState` (:func:`project_for` makes a project the way an environment names it),
start it with :func:`fake_google`, set ``GOOGLE_API_ENDPOINT`` to the URL it yields::

    state = GoogleState()
    state.projects["mlp-staging-4410"] = Project(id="mlp-staging-4410", number="123456789012")
    with fake_google(state) as url:
        ...

Routes (REST references at https://cloud.google.com/<product>/docs/reference/rest):

* cloudresourcemanager v1: ``GET projects/{id}``; ``POST projects/{id}:getIamPolicy|setIamPolicy|testIamPermissions``
* serviceusage v1: ``GET projects/{n}/services?filter=state:ENABLED``, ``POST projects/{n}/services:batchEnable``
  (a long-running operation, done on its second read), ``GET operations/{id}``; v1beta1
  ``POST projects/{n}/services/{api}:generateServiceIdentity``
* iam v1: ``projects/{id}/serviceAccounts`` (create, get, ``:getIamPolicy``, ``:setIamPolicy``: a
  member ``serviceAccount:`` that does not exist is refused with 400, as IAM does),
  ``projects/{n}/locations/global/workloadIdentityPools[/{pool}[/providers[/{id}]]]`` (get, create,
  patch; operations)
* cloudbilling v1: ``GET projects/{id}/billingInfo``, ``billingAccounts/{id}:getIamPolicy`` (GET),
  ``:setIamPolicy``, ``:testIamPermissions`` (403 when ``BillingAccount.denied``)
* compute v1: ``GET compute/v1/projects/{id}``, ``.../regions/{r}``, ``.../zones/{z}/acceleratorTypes/{t}``,
  ``.../zones/{z}/machineTypes/{m}``
* cloudidentity v1: ``GET groups:lookup?groupKey.id=…``
* cloudbuild v2: ``GET projects/{id}/locations/{l}/connections/{c}``
* artifactregistry v1: ``GET projects/{id}/locations/{l}/repositories/{r}/packages/{image}/tags/{tag}``
  and ``.../versions/sha256:…``

A project's ``permissions`` (None: every permission) is what ``testIamPermissions`` grants the
caller. ``state.requests`` records every (method, path).
"""

from __future__ import annotations

import http.server
import itertools
import json
import re
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.servers import http_server

ERROR = {"NOT_FOUND": 404, "INVALID_ARGUMENT": 400, "PERMISSION_DENIED": 403, "ALREADY_EXISTS": 409, "FAILED_PRECONDITION": 400}


class Fail(Exception):
    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Project:
    id: str
    number: str
    state: str = "ACTIVE"
    enabled: set[str] = field(
        default_factory=lambda: {
            "serviceusage.googleapis.com",
            "logging.googleapis.com",
            "monitoring.googleapis.com",
            "storage.googleapis.com",
        }
    )
    policy: dict[str, Any] = field(default_factory=lambda: {"version": 1, "etag": "BwE=", "bindings": []})
    service_accounts: dict[str, dict[str, Any]] = field(default_factory=dict)  # email -> account (+ "policy")
    pools: dict[str, dict[str, Any]] = field(default_factory=dict)
    providers: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    agents: set[str] = field(default_factory=set)  # service agents generated (emails)
    billing_account: str | None = None
    billing_enabled: bool = True
    permissions: set[str] | None = None  # testIamPermissions grants these (None: all)
    region_quotas: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    region_zones: dict[str, list[str]] = field(default_factory=dict)  # zone names of each region
    project_quotas: list[dict[str, Any]] = field(default_factory=list)
    accelerators: dict[str, set[str]] = field(default_factory=dict)  # zone -> accelerator types offered
    machine_types: dict[str, set[str]] = field(default_factory=dict)  # zone -> machine types offered
    connections: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (location, id) -> connection
    images: dict[str, dict[str, str]] = field(default_factory=dict)  # "<location>/<repo>/<image>" -> {tag or digest: digest}


@dataclass
class BillingAccount:
    id: str
    policy: dict[str, Any] = field(default_factory=lambda: {"version": 1, "etag": "BwE=", "bindings": []})
    permissions: set[str] = field(default_factory=lambda: {"billing.budgets.create", "billing.budgets.get"})
    denied: bool = False  # the caller may not read or set its IAM policy


@dataclass
class GoogleState:
    projects: dict[str, Project] = field(default_factory=dict)
    billing: dict[str, BillingAccount] = field(default_factory=dict)
    groups: set[str] = field(default_factory=set)  # group emails the caller can see
    requests: list[tuple[str, str]] = field(default_factory=list)
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def by_number(self, key: str) -> Project:
        for project in self.projects.values():
            if key in (project.id, project.number):
                return project
        raise Fail("NOT_FOUND", f"project {key} not found")

    def reset(self) -> None:
        """Back to an empty seed (a server started once for a module serves one state object)."""
        self.__init__()  # type: ignore[misc]


def _operation(state: GoogleState, name_prefix: str, response: dict[str, Any], *, reads_until_done: int = 1) -> dict[str, Any]:
    name = f"{name_prefix}operations/op-{next(state.ids)}"
    state.operations[name] = {"name": name, "done": False, "response": response, "_reads": reads_until_done}
    return {"name": name, "done": False}


class _Handler(http.server.BaseHTTPRequestHandler):
    state: GoogleState

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _dispatch(self, method: str) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(parsed.path)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else {}
        self.state.requests.append((method, path))
        try:
            answer = self._route(method, path, query, body)
        except Fail as exc:
            self._send(
                ERROR.get(exc.status, 400), {"error": {"code": ERROR.get(exc.status, 400), "message": exc.message, "status": exc.status}}
            )
            return
        except KeyError as exc:
            self._send(404, {"error": {"code": 404, "message": f"{path}: {exc} not found", "status": "NOT_FOUND"}})
            return
        self._send(200, answer)

    # --- routing ---------------------------------------------------------------------------------

    def _route(self, method: str, path: str, query: dict[str, str], body: dict[str, Any]) -> Any:
        s = self.state
        if m := re.fullmatch(r"/v1/projects/([^/:]+)", path):
            p = s.by_number(m[1])
            if p.state == "DELETE_REQUESTED" and method == "GET":
                return {"projectId": p.id, "projectNumber": p.number, "lifecycleState": p.state}
            return {"projectId": p.id, "projectNumber": p.number, "lifecycleState": p.state, "name": p.id}
        if m := re.fullmatch(r"/v1/projects/([^/:]+):(getIamPolicy|setIamPolicy|testIamPermissions)", path):
            p = s.by_number(m[1])
            if m[2] == "getIamPolicy":
                return json.loads(json.dumps(p.policy))
            if m[2] == "setIamPolicy":
                self._check_members(body["policy"])
                p.policy = body["policy"]
                return p.policy
            wanted = body.get("permissions", [])
            return {"permissions": [x for x in wanted if p.permissions is None or x in p.permissions]}
        if m := re.fullmatch(r"/v1/projects/([^/]+)/services", path):
            p = s.by_number(m[1])
            assert query.get("filter") == "state:ENABLED", query
            return {
                "services": [
                    {"name": f"projects/{p.number}/services/{x}", "config": {"name": x}, "state": "ENABLED"} for x in sorted(p.enabled)
                ]
            }
        if m := re.fullmatch(r"/v1/projects/([^/]+)/services:batchEnable", path):
            p = s.by_number(m[1])
            ids = body.get("serviceIds", [])
            if len(ids) > 20:
                raise Fail("INVALID_ARGUMENT", "A single request can enable a maximum of 20 services at a time.")
            op = _operation(s, "", {"services": ids}, reads_until_done=2)
            s.operations[op["name"]]["_apply"] = (p.id, ids)
            return op
        if m := re.fullmatch(r"/v1/(operations/[^/]+)", path):
            return self._read_operation(m[1])
        if m := re.fullmatch(r"/v1beta1/projects/([^/]+)/services/([^/:]+):generateServiceIdentity", path):
            p = s.by_number(m[1])
            email = f"service-{p.number}@gcp-sa-{m[2].split('.')[0]}.iam.gserviceaccount.com"
            p.agents.add(email)
            return {"name": "operations/finished.DONE_OPERATION", "done": True,
                    "response": {"@type": "type.googleapis.com/google.api.serviceusage.v1beta1.ServiceIdentity", "email": email}}  # fmt: skip
        if m := re.fullmatch(r"/v1/projects/([^/]+)/serviceAccounts", path):
            p = s.by_number(m[1])
            email = f"{body['accountId']}@{p.id}.iam.gserviceaccount.com"
            if email in p.service_accounts:
                raise Fail("ALREADY_EXISTS", f"Service account {body['accountId']} already exists within project projects/{p.id}.")
            p.service_accounts[email] = {"name": f"projects/{p.id}/serviceAccounts/{email}", "email": email, "projectId": p.id,
                                         "displayName": body.get("serviceAccount", {}).get("displayName", ""), "disabled": False,
                                         "policy": {"version": 1, "etag": "BwE=", "bindings": []}}  # fmt: skip
            return self._account(p.service_accounts[email])
        if m := re.fullmatch(r"/v1/projects/([^/]+)/serviceAccounts/([^/:]+)(?::(getIamPolicy|setIamPolicy))?", path):
            p = s.by_number(m[1])
            account = p.service_accounts[m[2]]
            if m[3] == "getIamPolicy":
                return json.loads(json.dumps(account["policy"]))
            if m[3] == "setIamPolicy":
                self._check_members(body["policy"])
                account["policy"] = body["policy"]
                return account["policy"]
            return self._account(account)
        if m := re.fullmatch(r"/v1/projects/([^/]+)/locations/global/workloadIdentityPools(?:/([^/]+))?(?:/providers(?:/([^/]+))?)?", path):
            return self._wif(method, m[1], m[2], m[3], query, body)
        if m := re.fullmatch(r"/v1/(projects/[^/]+/locations/global/workloadIdentityPools/.+/operations/[^/]+)", path):
            return self._read_operation(m[1])
        # cloudbilling
        if m := re.fullmatch(r"/v1/projects/([^/]+)/billingInfo", path):
            p = s.by_number(m[1])
            account = f"billingAccounts/{p.billing_account}" if p.billing_account else ""
            return {"name": f"projects/{p.id}/billingInfo", "projectId": p.id, "billingAccountName": account,
                    "billingEnabled": bool(p.billing_account) and p.billing_enabled}  # fmt: skip
        if m := re.fullmatch(r"/v1/billingAccounts/([^/:]+):(getIamPolicy|setIamPolicy|testIamPermissions)", path):
            account = s.billing[m[1]]
            if m[2] == "testIamPermissions":
                return {"permissions": [x for x in body.get("permissions", []) if x in account.permissions]}
            if account.denied:
                raise Fail("PERMISSION_DENIED", f"The caller does not have permission on billingAccounts/{account.id}")
            if m[2] == "getIamPolicy":
                return json.loads(json.dumps(account.policy))
            self._check_members(body["policy"])
            account.policy = body["policy"]
            return account.policy
        # compute
        if m := re.fullmatch(r"/compute/v1/projects/([^/]+)", path):
            p = s.by_number(m[1])
            return {"name": p.id, "id": p.number, "quotas": p.project_quotas}
        if m := re.fullmatch(r"/compute/v1/projects/([^/]+)/regions/([^/]+)", path):
            p = s.by_number(m[1])
            zones = [f"https://www.googleapis.com/compute/v1/projects/{p.id}/zones/{z}" for z in p.region_zones.get(m[2], [])]
            return {"name": m[2], "status": "UP", "quotas": p.region_quotas[m[2]], "zones": zones}
        if m := re.fullmatch(r"/compute/v1/projects/([^/]+)/zones/([^/]+)/(acceleratorTypes|machineTypes)/([^/]+)", path):
            p = s.by_number(m[1])
            offered = (p.accelerators if m[3] == "acceleratorTypes" else p.machine_types).get(m[2], set())
            if m[4] not in offered:
                raise Fail("NOT_FOUND", f"The resource 'projects/{p.id}/zones/{m[2]}/{m[3]}/{m[4]}' was not found")
            return {"name": m[4], "zone": m[2], "kind": f"compute#{m[3][:-1]}"}
        # cloudidentity
        if path == "/v1/groups:lookup":
            email = query.get("groupKey.id", "")
            if email not in s.groups:
                raise Fail("NOT_FOUND", "Error(4003): Cannot find group")
            return {"name": f"groups/{abs(hash(email)) % 10**9}"}
        # cloudbuild v2
        if m := re.fullmatch(r"/v2/projects/([^/]+)/locations/([^/]+)/connections/([^/]+)", path):
            p = s.by_number(m[1])
            return p.connections[(m[2], m[3])]
        # artifact registry
        if m := re.fullmatch(r"/v1/projects/([^/]+)/locations/([^/]+)/repositories/([^/]+)/packages/([^/]+)/(tags|versions)/([^/]+)", path):
            p = s.by_number(m[1])
            image = p.images[f"{m[2]}/{m[3]}/{m[4]}"]
            digest = image[m[6]]
            base = f"projects/{p.id}/locations/{m[2]}/repositories/{m[3]}/packages/{m[4]}"
            if m[5] == "tags":
                return {"name": f"{base}/tags/{m[6]}", "version": f"{base}/versions/{digest}"}
            return {"name": f"{base}/versions/{digest}"}
        raise Fail("NOT_FOUND", f"no route for {method} {path}")

    def _account(self, account: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in account.items() if k != "policy"}

    def _read_operation(self, name: str) -> dict[str, Any]:
        op = self.state.operations[name]
        op["_reads"] -= 1
        if op["_reads"] > 0:
            return {"name": name, "done": False}
        if "_apply" in op:
            project, ids = op.pop("_apply")
            self.state.projects[project].enabled |= set(ids)
        op["done"] = True
        return {k: v for k, v in op.items() if not k.startswith("_")}

    def _check_members(self, policy: dict[str, Any]) -> None:
        """IAM refuses a policy naming a service account that does not exist."""
        known = {email for p in self.state.projects.values() for email in [*p.service_accounts, *p.agents]}
        for binding in policy.get("bindings", []):
            for member in binding.get("members", []):
                if member.startswith("serviceAccount:") and member.split(":", 1)[1] not in known:
                    raise Fail("INVALID_ARGUMENT", f"Service account {member.split(':', 1)[1]} does not exist.")

    def _wif(self, method: str, project: str, pool: str | None, provider: str | None, query: dict[str, str], body: dict[str, Any]) -> Any:
        p = self.state.by_number(project)
        parent = f"projects/{p.number}/locations/global/workloadIdentityPools"
        if pool is None:  # create a pool
            pool_id = query["workloadIdentityPoolId"]
            if pool_id in p.pools:
                raise Fail("ALREADY_EXISTS", f"{parent}/{pool_id} already exists")
            p.pools[pool_id] = {"name": f"{parent}/{pool_id}", "state": "ACTIVE", "disabled": False, **body}
            return _operation(self.state, f"{parent}/{pool_id}/", p.pools[pool_id])
        pool_record = p.pools[pool]
        if provider is None and method == "GET" and not self.path.split("?")[0].endswith("/providers"):
            return pool_record
        if provider is None:  # create a provider
            provider_id = query["workloadIdentityPoolProviderId"]
            if (pool, provider_id) in p.providers:
                raise Fail("ALREADY_EXISTS", f"{parent}/{pool}/providers/{provider_id} already exists")
            if "google.subject" not in body.get("attributeMapping", {}):
                raise Fail("INVALID_ARGUMENT", "OIDC providers need a google.subject mapping")
            p.providers[(pool, provider_id)] = {
                "name": f"{parent}/{pool}/providers/{provider_id}",
                "state": "ACTIVE",
                "disabled": False,
                **body,
            }
            return _operation(self.state, f"{parent}/{pool}/providers/{provider_id}/", p.providers[(pool, provider_id)])
        record = p.providers[(pool, provider)]
        if method == "PATCH":
            for key in query.get("updateMask", "").split(","):
                record[key] = body[key]
            return _operation(self.state, f"{record['name']}/", record)
        return record


def project_for(env: Any, number: str) -> Project:
    """A project as the environment names it, with the quotas, zones and offerings its GPU pools need."""
    gcp = env.gcp
    project = Project(id=gcp.project_id, number=number, billing_account=gcp.billing_account)
    quotas = [{"metric": "CPUS", "limit": 96.0, "usage": 0.0}, {"metric": "SSD_TOTAL_GB", "limit": 2048.0, "usage": 0.0}]
    for pool in gcp.cluster.gpu_node_pools if gcp.cluster else []:
        metric = pool.accelerator.type.upper().replace("-", "_").replace("NVIDIA_TESLA_", "NVIDIA_") + "_GPUS"
        quotas += [{"metric": metric, "limit": 16.0, "usage": 0.0}, {"metric": f"PREEMPTIBLE_{metric}", "limit": 16.0, "usage": 0.0}]
        for zone in pool.zones:
            project.accelerators.setdefault(zone, set()).add(pool.accelerator.type)
            project.machine_types.setdefault(zone, set()).add(pool.machine_type)
    project.region_quotas[gcp.region] = quotas
    project.region_zones[gcp.region] = [f"{gcp.region}-{z}" for z in "abcf"]  # as us-central1: four zones, GKE's default uses three
    project.project_quotas = [
        {"metric": "GPUS_ALL_REGIONS", "limit": 16.0, "usage": 0.0},
        {"metric": "CPUS_ALL_REGIONS", "limit": 96.0, "usage": 0.0},
    ]
    return project


@contextmanager
def fake_google(state: GoogleState) -> Iterator[str]:
    """Serve ``state`` on 127.0.0.1; yields the base URL (for ``GOOGLE_API_ENDPOINT``)."""
    handler = type("GoogleHandler", (_Handler,), {"state": state})
    with http_server(handler) as url:
        yield url
