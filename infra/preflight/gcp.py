"""The GCP checks of preflight, over the Google REST APIs (google-auth with ADC, or
``GOOGLE_API_ENDPOINT``; see :class:`infra.clouds.gcp.GoogleRest`).

========================  =======================================================================
check                     API call
========================  =======================================================================
gcp-project               cloudresourcemanager v1 projects.get (number = the WIF provider's)
gcp-services              serviceusage v1 services.list filter=state:ENABLED (bootstrap's gcp.yaml)
gcp-service-agent         cloudresourcemanager v1 projects.getIamPolicy (the agent holds a role)
gcp-billing               cloudbilling v1 projects.getBillingInfo
gcp-budget-permission     cloudbilling v1 billingAccounts.testIamPermissions billing.budgets.create
gcp-permissions           cloudresourcemanager v1 projects.testIamPermissions (gcp.yaml deploy_permissions)
gcp-gpu-quota             compute v1 regions.get quotas, projects.get quotas (GPUS_ALL_REGIONS)
gcp-accelerator-offering  compute v1 acceleratorTypes.get, machineTypes.get per zone
gcp-rbac-group            cloudidentity v1 groups:lookup
gcp-build-connection      cloudbuild v2 projects.locations.connections.get (installationState)
gcp-promotion-reader      iam v1 projects.serviceAccounts.get (the next environment's deploy account)
gcp-image (--images)      artifactregistry v1 ...packages.tags.get / versions.get
========================  =======================================================================
"""

from __future__ import annotations

from functools import partial
from typing import Any

from environments.facts import gke_zone_count
from environments.schema import Environment, GkeGpuNodePool
from infra.clouds.gcp import GoogleApiError, GoogleRest
from infra.clouds.gcp_requirements import agent_email, applies, gcp_data, services
from infra.preflight.report import Report, facts

BOOTSTRAP = "run `infra bootstrap {env}`"


def check_gcp(env: Environment, report: Report, *, images: bool = False, promotes_to: Environment | None = None) -> None:
    assert env.gcp is not None
    api = GoogleRest(quota_project=env.gcp.project_id)
    project = env.gcp.project_id
    number: dict[str, str] = {}
    report.run("gcp-project", project, lambda: number.update(_project(env, api, report)), "allow resourcemanager.projects.get")
    reader = promotes_to.gcp_service_account("deploy") if promotes_to is not None and env.models else None
    if reader and promotes_to is not None:
        report.run(
            "gcp-promotion-reader",
            reader,
            lambda: _promotion_reader(promotes_to, api, reader, report),
            f"run `infra bootstrap {promotes_to.name}` first",
        )
    else:
        report.skip("gcp-promotion-reader", project, "promotes to no environment on GCP")
    if not number:
        for name in ("gcp-services", "gcp-service-agent", "gcp-billing", "gcp-permissions", "gcp-gpu-quota"):
            report.skip(name, project, "the project is not reachable (see gcp-project)")
        return
    n = number["number"]
    report.run("gcp-services", project, lambda: _services(env, api, n, report), "allow serviceusage.services.list")
    report.run("gcp-service-agent", project, lambda: _agents(env, api, n, report), "allow resourcemanager.projects.getIamPolicy")
    report.run("gcp-billing", project, lambda: _billing(env, api, report), "allow resourcemanager.projects.get on billing info")
    report.run(
        "gcp-budget-permission", env.gcp.billing_account, lambda: _budget_permission(env, api, report), "enable cloudbilling.googleapis.com"
    )
    report.run("gcp-permissions", project, lambda: _permissions(env, api, report), "allow resourcemanager.projects.get")
    pools = env.gcp.cluster.gpu_node_pools if env.gcp.cluster else []
    if pools:
        report.run(
            "gcp-gpu-quota", env.gcp.region, lambda: _gpu_quota(env, api, pools, report), "allow compute.regions.get, compute.projects.get"
        )
        for pool in pools:
            report.run(
                "gcp-accelerator-offering",
                pool.name,
                partial(_offering, env, api, pool, report),
                "allow compute.acceleratorTypes.get",
            )
    else:
        report.skip("gcp-gpu-quota", env.gcp.region, "no GPU node pools")
        report.skip("gcp-accelerator-offering", env.gcp.region, "no GPU node pools")
    group = env.gcp.cluster.rbac_security_group if env.gcp.cluster else None
    if group:
        report.run(
            "gcp-rbac-group",
            group,
            lambda: _group(env, api, group, report),
            "enable cloudidentity.googleapis.com; the caller must see the group",
        )
    else:
        report.skip("gcp-rbac-group", project, "no gcp.cluster.rbac_security_group")
    connection = env.gcp.build_connection
    if env.gcp.build_triggers and connection:
        report.run(
            "gcp-build-connection",
            str(connection),
            lambda: _connection(env, api, str(connection), report),
            "allow cloudbuild.connections.get",
        )
    else:
        why = (
            "no build triggers"
            if not env.gcp.build_triggers
            else "no gcp.build_connection (1st-gen triggers: connect the repository in the console)"
        )
        report.skip("gcp-build-connection", project, why)
    if images:
        _images(env, api, report)


def _project(env: Environment, api: GoogleRest, report: Report) -> dict[str, str]:
    assert env.gcp is not None
    project = api.get("cloudresourcemanager", f"/v1/projects/{env.gcp.project_id}")
    if not project or project.get("lifecycleState", "ACTIVE") != "ACTIVE":
        report.fail(
            "gcp-project", env.gcp.project_id, "does not exist, is being deleted, or these credentials cannot see it",
            f"create the project (gcloud projects create {env.gcp.project_id}) or correct gcp.project_id",
        )  # fmt: skip
        return {}
    number = str(project["projectNumber"])
    named = env.ci.gcp_workload_identity_provider if env.ci else None
    if named is None:
        report.fail("gcp-project", env.gcp.project_id, f"number {number}; no ci.gcp_workload_identity_provider",
                    f"set ci.gcp_workload_identity_provider to the provider `infra bootstrap {env.name}` prints (projects/{number}/…)")  # fmt: skip
    elif named.split("/")[1] != number:
        report.fail(
            "gcp-project", env.gcp.project_id, f"number {number}, but ci.gcp_workload_identity_provider names project {named.split('/')[1]}",
            f"set ci.gcp_workload_identity_provider to projects/{number}/{'/'.join(named.split('/')[2:])}",
        )  # fmt: skip
    else:
        report.ok("gcp-project", env.gcp.project_id, f"number {number}, as the Workload Identity provider names it")
    return {"number": number}


def _services(env: Environment, api: GoogleRest, number: str, report: Report) -> None:
    assert env.gcp is not None
    listed = api.pages("serviceusage", f"/v1/projects/{number}/services", "services", filter="state:ENABLED", pageSize=200)
    enabled = {s.get("config", {}).get("name") or s["name"].rsplit("/", 1)[1] for s in listed}
    missing = [s for s in services(env) if s not in enabled]
    if missing:
        report.fail(
            "gcp-services", env.gcp.project_id, f"not enabled: {', '.join(missing)}",
            f"{BOOTSTRAP.format(env=env.name)}, or gcloud services enable {' '.join(missing)} --project={env.gcp.project_id}",
        )  # fmt: skip
    else:
        report.ok("gcp-services", env.gcp.project_id, f"{len(services(env))} APIs enabled")


def _agents(env: Environment, api: GoogleRest, number: str, report: Report) -> None:
    assert env.gcp is not None
    policy = (
        api.post("cloudresourcemanager", f"/v1/projects/{env.gcp.project_id}:getIamPolicy", {"options": {"requestedPolicyVersion": 3}})
        or {}
    )
    members = {m for b in policy.get("bindings", []) for m in b.get("members", [])}
    for agent in gcp_data()["agents"]:
        if not applies(agent, env):
            continue
        email = agent_email(agent, number)
        if f"serviceAccount:{email}" in members:
            report.ok("gcp-service-agent", email, f"holds a role on {env.gcp.project_id}")
        else:
            report.fail(
                "gcp-service-agent", email, "not created (or holds no role)",
                f"{BOOTSTRAP.format(env=env.name)}, or gcloud beta services identity create --service={agent['service']} --project={env.gcp.project_id}",
            )  # fmt: skip


def _billing(env: Environment, api: GoogleRest, report: Report) -> None:
    assert env.gcp is not None
    info = api.get("cloudbilling", f"/v1/projects/{env.gcp.project_id}/billingInfo") or {}
    want = f"billingAccounts/{env.gcp.billing_account}"
    fix = f"gcloud billing projects link {env.gcp.project_id} --billing-account={env.gcp.billing_account}"
    if not info.get("billingEnabled"):
        report.fail("gcp-billing", env.gcp.project_id, "billing is not enabled", fix)
    elif info.get("billingAccountName") != want:
        report.fail(
            "gcp-billing",
            env.gcp.project_id,
            f"linked to {info.get('billingAccountName')}, not {want}",
            f"{fix}, or correct gcp.billing_account",
        )
    else:
        report.ok("gcp-billing", env.gcp.project_id, f"billing enabled on {env.gcp.billing_account}")


def _budget_permission(env: Environment, api: GoogleRest, report: Report) -> None:
    assert env.gcp is not None
    account = env.gcp.billing_account
    held = (
        api.post("cloudbilling", f"/v1/billingAccounts/{account}:testIamPermissions", {"permissions": ["billing.budgets.create"]}) or {}
    ).get("permissions", [])
    if "billing.budgets.create" in held:
        report.ok("gcp-budget-permission", account, "the caller can create budgets")
    else:
        role = gcp_data()["billing_roles"]["deploy"]["role"]
        report.fail(
            "gcp-budget-permission", account, "the caller lacks billing.budgets.create on the billing account",
            f"gcloud billing accounts add-iam-policy-binding {account} --member=serviceAccount:{env.gcp_service_account('deploy')} --role={role} "
            "(a billing account administrator; `infra bootstrap` does it with that permission)",
        )  # fmt: skip


def _permissions(env: Environment, api: GoogleRest, report: Report) -> None:
    assert env.gcp is not None
    wanted = list(gcp_data()["deploy_permissions"])
    held = set(
        (api.post("cloudresourcemanager", f"/v1/projects/{env.gcp.project_id}:testIamPermissions", {"permissions": wanted}) or {}).get(
            "permissions", []
        )
    )
    missing = [p for p in wanted if p not in held]
    if missing:
        report.fail(
            "gcp-permissions", env.gcp.project_id, f"the caller lacks {', '.join(missing)}",
            f"run preflight as the deploy account (gcloud config set auth/impersonate_service_account {env.gcp_service_account('deploy')}) "
            f"after `infra bootstrap {env.name}` granted its roles (infra/clouds/gcp_requirements.yaml deploy_roles)",
        )  # fmt: skip
    else:
        report.ok("gcp-permissions", env.gcp.project_id, f"all {len(wanted)} permissions the apply needs")


def _quota(quotas: list[dict[str, Any]], metric: str) -> dict[str, Any] | None:
    return next((q for q in quotas if q.get("metric") == metric), None)


def _gpu_quota(env: Environment, api: GoogleRest, pools: list[GkeGpuNodePool], report: Report) -> None:
    assert env.gcp is not None
    region = api.get("compute", f"/compute/v1/projects/{env.gcp.project_id}/regions/{env.gcp.region}") or {}
    metrics = facts()["gcp"]["gpu_quota_metrics"]
    need: dict[str, tuple[int, list[str]]] = {}
    total = 0
    for pool in pools:
        base = metrics.get(pool.accelerator.type)
        if base is None:
            report.skip("gcp-gpu-quota", pool.name, f"no quota metric known for {pool.accelerator.type} (infra/preflight/preflight.yaml)")
            continue
        metric = f"PREEMPTIBLE_{base}" if pool.spot else base
        zones, _ = gke_zone_count(
            env.gcp.region, pool.zones
        )  # the one zone rule (summary, cost, alarms): 3 by default, not the region's all
        gpus = pool.max * zones * pool.accelerator.count  # max is per zone in GKE autoscaling
        count, names = need.get(metric, (0, []))
        need[metric] = (count + gpus, [*names, pool.name])
        total += gpus
    quotas = region.get("quotas", [])
    for metric, (gpus, names) in sorted(need.items()):
        quota = _quota(quotas, metric)
        limit = float(quota["limit"]) if quota else 0.0
        subject = f"{metric} in {env.gcp.region} ({', '.join(names)})"
        if limit >= gpus:
            report.ok("gcp-gpu-quota", subject, f"{gpus} GPUs at max, quota {limit:g}")
        else:
            report.fail(
                "gcp-gpu-quota", subject, f"{gpus} GPUs at max (max nodes x zones x GPUs), the quota is {limit:g}",
                f"request {metric} >= {gpus} in {env.gcp.region}: console IAM & Admin > Quotas (service compute.googleapis.com, "
                f"project {env.gcp.project_id})",
            )  # fmt: skip
    project = api.get("compute", f"/compute/v1/projects/{env.gcp.project_id}") or {}
    metric = facts()["gcp"]["all_regions_metric"]
    quota = _quota(project.get("quotas", []), metric)
    limit = float(quota["limit"]) if quota else 0.0
    if limit >= total:
        report.ok("gcp-gpu-quota", metric, f"{total} GPUs at max, quota {limit:g}")
    else:
        report.fail(
            "gcp-gpu-quota", metric, f"{total} GPUs at max across the pools, the global quota is {limit:g}",
            f"request {metric} >= {total}: console IAM & Admin > Quotas (compute.googleapis.com/gpus_all_regions, project {env.gcp.project_id})",
        )  # fmt: skip


def _offering(env: Environment, api: GoogleRest, pool: GkeGpuNodePool, report: Report) -> None:
    assert env.gcp is not None
    zones = pool.zones or [
        z.rsplit("/", 1)[1]
        for z in (api.get("compute", f"/compute/v1/projects/{env.gcp.project_id}/regions/{env.gcp.region}") or {}).get("zones", [])
    ]
    for zone in zones:
        base = f"/compute/v1/projects/{env.gcp.project_id}/zones/{zone}"
        missing = [
            f"{kind} {name}"
            for kind, name, path in (
                ("accelerator", pool.accelerator.type, "acceleratorTypes"),
                ("machine type", pool.machine_type, "machineTypes"),
            )
            if api.get("compute", f"{base}/{path}/{name}") is None
        ]
        subject = f"{pool.name} in {zone}"
        if missing:
            report.fail(
                "gcp-accelerator-offering", subject, f"{zone} does not offer {' or '.join(missing)}",
                f"choose zones that offer them for gcp.cluster.gpu_node_pools[{pool.name}].zones: gcloud compute accelerator-types list "
                f"--filter='name={pool.accelerator.type}'",
            )  # fmt: skip
        else:
            report.ok("gcp-accelerator-offering", subject, f"{pool.accelerator.type} on {pool.machine_type}")


def _promotion_reader(target: Environment, api: GoogleRest, email: str, report: Report) -> None:
    """The model bucket and the image repositories grant reads to the next environment's deploy
    account, and IAM refuses a member that does not exist ("Service account ... does not exist",
    the provider's IamServiceAccountNotFound, not retried): bootstrap the last environment of the
    promotion chain first."""
    assert target.gcp is not None
    try:
        found = api.get("iam", f"/v1/projects/{target.gcp.project_id}/serviceAccounts/{email}")
    except GoogleApiError as exc:  # 403: the caller may not see another project's accounts
        if exc.status == 403:
            report.skip(
                "gcp-promotion-reader",
                email,
                f"cannot read {target.gcp.project_id}'s accounts; make sure `infra bootstrap {target.name}` ran",
            )
            return
        raise
    if found is None:
        report.fail(
            "gcp-promotion-reader", email, f"does not exist: the promotion grants to {target.name} would be refused",
            f"run `infra bootstrap {target.name}` (bootstrap the promotion chain from its end: production, staging, dev)",
        )  # fmt: skip
    else:
        report.ok("gcp-promotion-reader", email, "exists")


def _group(env: Environment, api: GoogleRest, group: str, report: Report) -> None:
    found = api.get("cloudidentity", "/v1/groups:lookup", **{"groupKey.id": group})
    if found and found.get("name"):
        report.ok("gcp-rbac-group", group, found["name"])
    else:
        report.fail(
            "gcp-rbac-group", group, "no such group, or the caller cannot see it",
            f"create {group} in Google Workspace / Cloud Identity (admin.google.com > Groups) and nest the groups that get "
            "Kubernetes RBAC in it, or correct gcp.cluster.rbac_security_group",
        )  # fmt: skip


def _connection(env: Environment, api: GoogleRest, connection: str, report: Report) -> None:
    assert env.gcp is not None
    name = f"projects/{env.gcp.project_id}/locations/{env.gcp.region}/connections/{connection}"
    found = api.get("cloudbuild", f"/v2/{name}")
    if found is None:
        report.fail(
            "gcp-build-connection", name, "no such connection",
            f"create it once by hand: console Cloud Build > Repositories > 2nd gen > Create host connection (GitHub, region {env.gcp.region}, "
            f"name {connection}), or gcloud builds connections create github {connection} --region={env.gcp.region}",
        )  # fmt: skip
        return
    state = found.get("installationState", {})
    if state.get("stage") == facts()["gcp"]["connection_complete"]:
        report.ok("gcp-build-connection", name, "the GitHub App is installed")
    else:
        report.fail(
            "gcp-build-connection", name, f"installation {state.get('stage', 'unknown')}: {state.get('message', '')}".strip(),
            f"finish the GitHub handshake: {state.get('actionUri') or 'console Cloud Build > Repositories > 2nd gen'}",
        )  # fmt: skip


def _images(env: Environment, api: GoogleRest, report: Report) -> None:
    assert env.gcp is not None
    if not (env.serving and env.gcp.cluster):
        report.skip("gcp-image", env.gcp.project_id, "the environment pins no image on GCP")
        return
    serving = env.serving
    repository = env.resource_name(serving.registry)
    base = f"/v1/projects/{env.gcp.project_id}/locations/{env.gcp.region}/repositories/{repository}/packages/{serving.registry}"
    path = f"{base}/versions/{serving.image_digest}" if serving.image_digest else f"{base}/tags/{serving.image_tag}"
    subject = f"serving: {env.image_repository('gcp', serving.registry)}{serving.image_ref}"

    def one() -> None:
        if api.get("artifactregistry", path) is None:
            report.fail(
                "gcp-image", subject, "not in Artifact Registry",
                f"build and push it: infra cloudbuild submit {env.name} (or docker push {env.image_repository('gcp', serving.registry)}{serving.image_ref})",
            )  # fmt: skip
        else:
            report.ok("gcp-image", subject, "exists")

    report.run("gcp-image", subject, one, "allow artifactregistry.tags.get")
