"""The GCP half of bootstrap, over the Google REST APIs (:class:`infra.clouds.gcp.GoogleRest`:
google-auth with Application Default Credentials, or ``GOOGLE_API_ENDPOINT`` in the tests).

In this order: the APIs of ``gcp.yaml`` (plan-time ones included; the reads below need some of
them), then every read a refusal depends on (the plan account's project roles, the Workload
Identity pool and provider, the accounts' workloadIdentityUser members), then the writes: the
service agents, the deploy and plan service accounts, their project and billing-account roles, the
pool and GitHub provider, and the bindings of exactly the CI subjects. Calls (REST references):

* cloudresourcemanager v1 ``projects.get``, ``projects.getIamPolicy`` / ``setIamPolicy``;
* serviceusage v1 ``services.list`` (``filter=state:ENABLED``), ``services.batchEnable`` (≤ 20),
  ``operations.get``; v1beta1 ``services.generateServiceIdentity``;
* iam v1 ``projects.serviceAccounts.get`` / ``create`` / ``getIamPolicy`` / ``setIamPolicy``,
  ``projects.locations.workloadIdentityPools[.providers].get`` / ``create`` / ``patch``;
* cloudbilling v1 ``billingAccounts.getIamPolicy`` / ``setIamPolicy``.
"""

from __future__ import annotations

import re
import time
from typing import Any, Literal

from environments.schema import Environment
from infra.bootstrap import policies
from infra.bootstrap.result import BootstrapRefused, Result
from infra.clouds.gcp import GoogleApiError, GoogleRest
from infra.clouds.gcp_requirements import agent_email, applies, gcp_data, services
from infra.errors import InfraError

WORKLOAD_IDENTITY_USER = "roles/iam.workloadIdentityUser"
BATCH = 20  # BatchEnableServicesRequest: at most 20 services a call
# a service account just created can be refused as a policy member for a few seconds (IAM is
# eventually consistent: cloud.google.com/iam/docs/overview#consistency); retried this long
PROPAGATION_SECONDS = 60.0
Purpose = Literal["deploy", "plan"]


def wif_ids(env: Environment) -> tuple[str, str]:
    """The pool and provider ids: those the environment file names, else gcp.yaml's defaults."""
    named = env.ci.gcp_workload_identity_provider if env.ci else None
    if named:
        parts = named.split("/")
        return parts[5], parts[7]
    return gcp_data()["wif"]["pool"], gcp_data()["wif"]["provider"]


def pool_name(env: Environment, number: str) -> str:
    return f"projects/{number}/locations/global/workloadIdentityPools/{wif_ids(env)[0]}"


def provider_name(env: Environment, number: str) -> str:
    return f"{pool_name(env, number)}/providers/{wif_ids(env)[1]}"


def attribute_mapping() -> dict[str, str]:
    return dict(gcp_data()["wif"]["attribute_mapping"])


def attribute_condition(env: Environment) -> str:
    assert env.ci is not None
    return str(gcp_data()["wif"]["attribute_condition"]).replace("{repository}", env.ci.repository)


def _squash(cel: str | None) -> str:
    return re.sub(r"\s+", "", cel or "").replace('"', "'")


def wif_members(env: Environment, number: str, purpose: Purpose) -> list[str]:
    """Who may impersonate the account: the deploy subject exactly, or the plan subjects (the review's
    through attribute.pr_sub, the pull request number cut off)."""
    base = f"principalSet://iam.googleapis.com/{pool_name(env, number)}"
    if purpose == "deploy":
        return [f"{base}/attribute.sub/{policies.deploy_subject(env)}"]
    subjects = policies.plan_subjects(env)
    review = subjects["review"].split("@refs/pull/")[0]
    return [
        f"{base}/attribute.pr_sub/{review}",
        f"{base}/attribute.sub/{subjects['post-merge']}",
        f"{base}/attribute.sub/{subjects['drift']}",
    ]


def _binding(policy: dict[str, Any], role: str) -> dict[str, Any] | None:
    return next((b for b in policy.setdefault("bindings", []) if b.get("role") == role and not b.get("condition")), None)


def grant(policy: dict[str, Any], role: str, member: str) -> bool:
    """Add ``member`` to ``role`` in ``policy`` (in place); False when it was there."""
    binding = _binding(policy, role)
    if binding is None:
        policy["bindings"].append({"role": role, "members": [member]})
        return True
    if member in binding.setdefault("members", []):
        return False
    binding["members"].append(member)
    return True


def holds(policy: dict[str, Any], member: str) -> list[str]:
    return sorted(b["role"] for b in policy.get("bindings", []) if member in b.get("members", []))


class GcpBootstrap:
    def __init__(self, env: Environment, result: Result) -> None:
        assert env.gcp is not None and env.ci is not None
        self.env = env
        self.gcp = env.gcp
        self.result = result
        self.project = env.gcp.project_id
        self.api = GoogleRest(quota_project=self.project)
        self.data = gcp_data()
        self.number = ""

    def sa(self, purpose: Purpose) -> str:
        email = self.env.gcp_service_account(purpose)
        assert email is not None
        return email

    def run(self) -> None:
        project = self.api.get("cloudresourcemanager", f"/v1/projects/{self.project}")
        if not project or project.get("lifecycleState", "ACTIVE") != "ACTIVE":
            raise InfraError(
                f"gcp.project_id: project {self.project} does not exist, is being deleted, or these credentials cannot see it; "
                "create it (gcloud projects create) or correct gcp.project_id"
            )
        self.number = str(project["projectNumber"])
        self._services()
        found = self._inspect()  # refusals; only the APIs are written before this
        policy = found["policy"]
        changed = self._agents(policy)
        accounts = {purpose: self._service_account(purpose, found["accounts"][purpose]) for purpose in ("deploy", "plan")}
        changed |= self._project_roles(policy)
        if changed:
            self._set_project_policy(policy)
        self._billing_roles()
        self._wif(found["pool"], found["provider"])
        for purpose in ("deploy", "plan"):
            self._workload_identity_user(purpose, accounts[purpose])
        self._provider_name()

    # --- APIs ------------------------------------------------------------------------------------

    def _services(self) -> None:
        wanted = services(self.env)
        enabled = {
            s.get("config", {}).get("name") or s["name"].rsplit("/", 1)[1]
            for s in self.api.pages(
                "serviceusage", f"/v1/projects/{self.number}/services", "services", filter="state:ENABLED", pageSize=200
            )
        }
        missing = [s for s in wanted if s not in enabled]
        for i in range(0, len(missing), BATCH):
            operation = self.api.post(
                "serviceusage", f"/v1/projects/{self.number}/services:batchEnable", {"serviceIds": missing[i : i + BATCH]}
            )
            self.api.wait("serviceusage", operation)
        if missing:
            self.result.add(f"GCP APIs of {self.project}", "created", f"enabled {', '.join(missing)}")
        else:
            self.result.add(f"GCP APIs of {self.project}", "unchanged", f"{len(wanted)} enabled")

    # --- reading (refusals before any other write) -------------------------------------------------

    def _inspect(self) -> dict[str, Any]:
        policy = self.api.post(
            "cloudresourcemanager", f"/v1/projects/{self.project}:getIamPolicy", {"options": {"requestedPolicyVersion": 3}}
        )
        plan_member = f"serviceAccount:{self.sa('plan')}"
        forbidden = {r["role"] for r in self.data["plan_forbidden"]}
        if bad := [r for r in holds(policy, plan_member) if r in forbidden]:
            raise BootstrapRefused(
                f"{self.sa('plan')} holds {', '.join(bad)} on {self.project}, which read data or write; the plan account reads "
                f"configuration only, and bootstrap does not remove grants: gcloud projects remove-iam-policy-binding {self.project} "
                f"--member={plan_member} --role={bad[0]}, then run again"
            )
        accounts: dict[str, Any] = {}
        for purpose in ("deploy", "plan"):
            email = self.sa(purpose)
            account = self.api.get("iam", f"/v1/projects/{self.project}/serviceAccounts/{email}")
            if account and account.get("disabled"):
                raise BootstrapRefused(f"{email} is disabled; bootstrap does not re-enable it: gcloud iam service-accounts enable {email}")
            accounts[purpose] = account
            if account:
                self._refuse_other_impersonators(purpose, email)
        pool = self.api.get("iam", f"/v1/{pool_name(self.env, self.number)}")
        provider = self.api.get("iam", f"/v1/{provider_name(self.env, self.number)}") if pool else None
        for what, thing in (("pool", pool), ("provider", provider)):
            if thing and thing.get("state") == "DELETED":
                raise BootstrapRefused(
                    f"Workload Identity {what} {thing['name']} is deleted (kept 30 days); bootstrap does not undelete it: "
                    f"gcloud iam workload-identity-pools {'providers ' if what == 'provider' else ''}undelete, then run again"
                )
            if thing and thing.get("disabled"):
                raise BootstrapRefused(f"Workload Identity {what} {thing['name']} is disabled; enable it by hand (someone turned it off)")
        if provider:
            issuer = provider.get("oidc", {}).get("issuerUri", "").rstrip("/")
            if issuer != self.data["wif"]["issuer"]:
                raise BootstrapRefused(
                    f"{provider['name']} trusts the issuer {issuer or '(none)'}, not {self.data['wif']['issuer']}; choose other ids"
                )
            if _squash(provider.get("attributeCondition")) != _squash(attribute_condition(self.env)):
                raise BootstrapRefused(
                    f"{provider['name']} has the attribute condition {provider.get('attributeCondition')!r}, bootstrap writes "
                    f"{attribute_condition(self.env)!r}; bootstrap does not change a condition (it could admit other repositories or "
                    "lock others out): set it by hand (gcloud iam workload-identity-pools providers update-oidc --attribute-condition), "
                    "then run again"
                )
        return {"policy": policy, "accounts": accounts, "pool": pool, "provider": provider}

    def _refuse_other_impersonators(self, purpose: Purpose, email: str) -> None:
        policy = self.api.post("iam", f"/v1/projects/{self.project}/serviceAccounts/{email}:getIamPolicy")
        binding = _binding(policy or {}, WORKLOAD_IDENTITY_USER)
        ours = set(wif_members(self.env, self.number, purpose))
        others = [m for m in (binding or {}).get("members", []) if m.startswith(("principal://", "principalSet://")) and m not in ours]
        if others:
            raise BootstrapRefused(
                f"{email} can also be impersonated by {', '.join(others)}, more than the {purpose} subjects bootstrap binds; bootstrap "
                f"does not remove members: gcloud iam service-accounts remove-iam-policy-binding {email} --role={WORKLOAD_IDENTITY_USER} "
                f"--member='{others[0]}', then run again"
            )

    # --- writing ---------------------------------------------------------------------------------

    def _agents(self, policy: dict[str, Any]) -> bool:
        changed = False
        for agent in self.data["agents"]:
            if not applies(agent, self.env):
                continue
            email = agent_email(agent, self.number)
            member = f"serviceAccount:{email}"
            if holds(policy, member):
                self.result.add(f"service agent {email}", "unchanged")
                continue
            operation = self.api.post(
                "serviceusage", f"/v1beta1/projects/{self.number}/services/{agent['service']}:generateServiceIdentity"
            )
            identity = self.api.wait("serviceusage", operation, version="v1beta1") if operation and not operation.get("done") else operation
            email = (identity or {}).get("response", identity or {}).get("email", email)
            grant(policy, agent["role"], f"serviceAccount:{email}")
            changed = True
            self.result.add(f"service agent {email}", "created", agent["role"])
        return changed

    def _service_account(self, purpose: Purpose, current: dict[str, Any] | None) -> dict[str, Any]:
        email = self.sa(purpose)
        if current:
            self.result.add(f"service account {email}", "unchanged")
            return current
        account: dict[str, Any] = self.api.post(
            "iam",
            f"/v1/projects/{self.project}/serviceAccounts",
            {
                "accountId": self.env.resource_name(purpose),
                "serviceAccount": {
                    "displayName": f"GitHub Actions {purpose} of {self.env.name}",
                    "description": f"{'Applies' if purpose == 'deploy' else 'Plans (read-only)'} {self.env.name} from GitHub Actions (infra bootstrap)",
                },
            },
        )
        self.result.add(f"service account {email}", "created")
        return account

    def _project_roles(self, policy: dict[str, Any]) -> bool:
        changed = False
        for purpose, key in (("deploy", "deploy_roles"), ("plan", "plan_roles")):
            member = f"serviceAccount:{self.sa(purpose)}"  # type: ignore[arg-type]
            added = [r["role"] for r in self.data[key] if grant(policy, r["role"], member)]
            what = f"project roles of {self.sa(purpose)}"  # type: ignore[arg-type]
            if added:
                changed = True
                self.result.add(what, "created" if len(added) == len(self.data[key]) else "updated", ", ".join(added))
            else:
                self.result.add(what, "unchanged", f"{len(self.data[key])} roles")
        return changed

    def _set_project_policy(self, policy: dict[str, Any]) -> None:
        policy["version"] = max(int(policy.get("version", 1)), 1)
        self._retry(lambda: self.api.post("cloudresourcemanager", f"/v1/projects/{self.project}:setIamPolicy", {"policy": policy}))

    @staticmethod
    def _retry(call: Any, seconds: float = PROPAGATION_SECONDS) -> Any:
        deadline = time.monotonic() + seconds
        delay = 1.0
        while True:
            try:
                return call()
            except GoogleApiError as exc:
                if exc.status != 400 or "does not exist" not in str(exc) or time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _billing_roles(self) -> None:
        account = f"billingAccounts/{self.gcp.billing_account}"
        try:
            policy = self.api.get("cloudbilling", f"/v1/{account}:getIamPolicy") or {}
            added = []
            for purpose in ("deploy", "plan"):
                role = self.data["billing_roles"][purpose]["role"]
                if grant(policy, role, f"serviceAccount:{self.sa(purpose)}"):
                    added.append(f"{role} for {self.sa(purpose)}")
            if added:
                self._retry(lambda: self.api.post("cloudbilling", f"/v1/{account}:setIamPolicy", {"policy": policy}))
                self.result.add(f"billing account {self.gcp.billing_account} roles", "updated", "; ".join(added))
            else:
                self.result.add(f"billing account {self.gcp.billing_account} roles", "unchanged")
        except GoogleApiError as exc:
            if exc.status != 403:
                raise
            deploy_role = self.data["billing_roles"]["deploy"]["role"]
            self.result.add(f"billing account {self.gcp.billing_account} roles", "kept", "no permission on the billing account")
            self.result.findings.append(
                f"a billing account administrator must grant the CI accounts their billing roles: gcloud billing accounts "
                f"add-iam-policy-binding {self.gcp.billing_account} --member=serviceAccount:{self.sa('deploy')} --role={deploy_role} "
                f"(and {self.data['billing_roles']['plan']['role']} for {self.sa('plan')})"
            )

    def _wif(self, pool: dict[str, Any] | None, provider: dict[str, Any] | None) -> None:
        pool_id, provider_id = wif_ids(self.env)
        parent = f"projects/{self.number}/locations/global/workloadIdentityPools"
        if pool is None:
            op = self.api.post(
                "iam",
                f"/v1/{parent}",
                {"displayName": "GitHub Actions", "description": f"{self.env.ci.repository} (infra bootstrap)"},  # type: ignore[union-attr]
                workloadIdentityPoolId=pool_id,
            )
            self.api.wait("iam", op)
            self.result.add(f"Workload Identity pool {pool_id}", "created")
        else:
            self.result.add(f"Workload Identity pool {pool_id}", "unchanged")
        mapping = attribute_mapping()
        if provider is None:
            op = self.api.post(
                "iam",
                f"/v1/{parent}/{pool_id}/providers",
                {
                    "displayName": "GitHub",
                    "attributeMapping": mapping,
                    "attributeCondition": attribute_condition(self.env),
                    "oidc": {"issuerUri": self.data["wif"]["issuer"]},
                },
                workloadIdentityPoolProviderId=provider_id,
            )
            self.api.wait("iam", op)
            self.result.add(f"Workload Identity provider {provider_id}", "created", attribute_condition(self.env))
            return
        current = provider.get("attributeMapping", {})
        differ = sorted(k for k, v in mapping.items() if current.get(k) != v)
        if not differ:
            self.result.add(f"Workload Identity provider {provider_id}", "unchanged")
            return
        merged = {**current, **mapping}
        op = self.api.patch("iam", f"/v1/{provider['name']}", {"attributeMapping": merged}, updateMask="attributeMapping")
        if op and "done" in op:
            self.api.wait("iam", op)
        self.result.add(f"Workload Identity provider {provider_id}", "updated", f"attribute mapping: {', '.join(differ)}")

    def _workload_identity_user(self, purpose: Purpose, account: dict[str, Any]) -> None:
        email = self.sa(purpose)
        path = f"/v1/projects/{self.project}/serviceAccounts/{email}"
        policy = self.api.post("iam", f"{path}:getIamPolicy") or {}
        added = [m for m in wif_members(self.env, self.number, purpose) if grant(policy, WORKLOAD_IDENTITY_USER, m)]
        what = f"{email} workloadIdentityUser"
        if not added:
            self.result.add(what, "unchanged", f"{purpose} subjects")
            return
        self._retry(lambda: self.api.post("iam", f"{path}:setIamPolicy", {"policy": policy}))
        self.result.add(what, "created" if len(added) == len(wif_members(self.env, self.number, purpose)) else "updated", "; ".join(added))

    def _provider_name(self) -> None:
        want = provider_name(self.env, self.number)
        named = self.env.ci.gcp_workload_identity_provider if self.env.ci else None
        if named != want:
            self.result.findings.append(
                f"ci.gcp_workload_identity_provider: the environment file names {named or 'none'}; set it to {want} "
                f"(project {self.project} is number {self.number})"
            )


def bootstrap_gcp(env: Environment, result: Result) -> None:
    GcpBootstrap(env, result).run()
