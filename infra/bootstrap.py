"""``infra bootstrap ENV``: what must exist before an environment's first deploy.

* The remote state: an S3 bucket (versioning, SSE-KMS, public access block, a TLS-only bucket
  policy, noncurrent versions kept 90 days; the lock is Terraform's S3 lock file, ``use_lockfile``,
  so there is no lock table) or a GCS bucket (versioning, uniform bucket-level access, public
  access prevention).
* GitHub's OIDC identity provider and the environment's two roles: ``<project>-<env>-github-deploy``
  trusted only from the GitHub Environment of the same name in ``ci.repository``, and the read-only
  ``<project>-<env>-github-plan`` trusted from that repository's pull requests and its default branch.

Idempotent: each setting is read first and written only when it is missing or weaker than ours, so a
second run changes nothing. It never takes something away: a bucket in another account or region, a
bucket policy that grants access to everyone, or a lifecycle rule that expires current objects (the
state itself) stops it with the reason, before anything is written. boto3 honours ``AWS_ENDPOINT_URL``
and google-cloud-storage ``STORAGE_EMULATOR_HOST`` (the tests point them at local servers).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from environments.schema import Environment
from infra.clouds import aws
from infra.errors import InfraError

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_AUDIENCE = "sts.amazonaws.com"
# GitHub's published intermediate thumbprints (AWS no longer checks them for this provider, but
# the API still wants one): github.blog/changelog/2023-06-27
GITHUB_THUMBPRINTS = ["6938fd4d98bab03faadb97b34396831e3780aea1", "1c58a3a8518e8759bf075b76b750d4f2df264fcd"]
TLS_SID = "DenyInsecureTransport"
LIFECYCLE_ID = "state-history"
NONCURRENT_DAYS = 90
DEPLOY_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"  # creates VPCs, clusters and IAM roles
PLAN_POLICY = "arn:aws:iam::aws:policy/ReadOnlyAccess"

Status = Literal["created", "updated", "unchanged", "kept"]


class BootstrapRefused(InfraError):
    """Bootstrapping would have to weaken or remove an existing setting; nothing was written."""

    exit_code = 1


@dataclass
class Step:
    what: str
    status: Status
    detail: str = ""


@dataclass
class Result:
    env: str
    steps: list[Step] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(s.status in ("created", "updated") for s in self.steps)

    def add(self, what: str, status: Status, detail: str = "") -> None:
        self.steps.append(Step(what, status, detail))

    def to_dict(self) -> dict[str, Any]:
        return {"env": self.env, "changed": self.changed, "steps": [s.__dict__ for s in self.steps]}


# --- S3 state bucket ------------------------------------------------------------------------------


def tls_statement(bucket: str) -> dict[str, Any]:
    return {
        "Sid": TLS_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def _public_statements(policy: dict[str, Any]) -> list[str]:
    out = []
    for i, st in enumerate(policy.get("Statement", [])):
        principal = st.get("Principal")
        everyone = principal == "*" or (isinstance(principal, dict) and "*" in (principal.get("AWS"), [principal.get("AWS")]))
        if st.get("Effect") == "Allow" and everyone and not st.get("Condition"):
            out.append(str(st.get("Sid") or f"Statement[{i}]"))
    return out


class _S3State:
    def __init__(self, env: Environment) -> None:
        self.env = env
        self.bucket = env.state.bucket
        self.region = env.state_region or "us-east-1"
        self.s3 = aws.client("s3", self.region)

    def inspect(self) -> dict[str, Any]:
        """Read the bucket's current settings; refuse before writing anything."""
        from botocore.exceptions import ClientError

        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = aws.error_code(exc)
            if code in ("404", "NoSuchBucket", "NotFound"):
                return {"exists": False}
            if code in ("403", "AccessDenied"):
                raise BootstrapRefused(
                    f"state bucket {self.bucket}: exists but this account cannot read it (owned by another account?); "
                    "choose another state.bucket"
                ) from None
            raise
        found: dict[str, Any] = {"exists": True}
        location = self.s3.get_bucket_location(Bucket=self.bucket).get("LocationConstraint") or "us-east-1"
        if location != self.region:
            raise BootstrapRefused(f"state bucket {self.bucket} is in {location}, the backend expects {self.region}; set state.region")
        found["versioning"] = self.s3.get_bucket_versioning(Bucket=self.bucket)
        found["encryption"] = self._get(
            "get_bucket_encryption", "ServerSideEncryptionConfiguration", "ServerSideEncryptionConfigurationNotFoundError"
        )
        found["public_access"] = self._get(
            "get_public_access_block", "PublicAccessBlockConfiguration", "NoSuchPublicAccessBlockConfiguration"
        )
        policy = self._get("get_bucket_policy", "Policy", "NoSuchBucketPolicy")
        found["policy"] = json.loads(policy) if policy else None
        found["lifecycle"] = self._get("get_bucket_lifecycle_configuration", "Rules", "NoSuchLifecycleConfiguration")
        if found["policy"] and (public := _public_statements(found["policy"])):
            raise BootstrapRefused(
                f"state bucket {self.bucket}: its policy grants access to everyone ({', '.join(public)}); a state bucket must not "
                "be public, and bootstrap does not delete statements: remove them by hand, then run again"
            )
        for rule in found["lifecycle"] or []:
            if rule.get("Status") == "Enabled" and rule.get("Expiration"):
                raise BootstrapRefused(
                    f"state bucket {self.bucket}: lifecycle rule {rule.get('ID', '?')!r} expires current objects, which would delete "
                    "the state; remove the rule by hand, then run again"
                )
        return found

    def _get(self, method: str, key: str, missing: str) -> Any:
        from botocore.exceptions import ClientError

        try:
            return getattr(self.s3, method)(Bucket=self.bucket).get(key)
        except ClientError as exc:
            if aws.error_code(exc) == missing:
                return None
            raise

    def apply(self, found: dict[str, Any], result: Result) -> None:
        what = f"s3://{self.bucket}"
        if not found["exists"]:
            kwargs: dict[str, Any] = {"Bucket": self.bucket}
            if self.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            self.s3.create_bucket(**kwargs)
            result.add(what, "created", self.region)
            found = {"exists": True, "versioning": {}, "encryption": None, "public_access": None, "policy": None, "lifecycle": None}
        # versioning: the state's history; with MFA delete on, it is already Enabled and left alone
        if found["versioning"].get("Status") == "Enabled":
            result.add(f"{what} versioning", "unchanged")
        else:
            self.s3.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"})
            result.add(f"{what} versioning", "updated" if found["versioning"].get("Status") else "created", "Enabled")
        self._encryption(found["encryption"], result, what)
        wanted = dict.fromkeys(("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True)
        if found["public_access"] == wanted:
            result.add(f"{what} public access block", "unchanged")
        else:
            self.s3.put_public_access_block(Bucket=self.bucket, PublicAccessBlockConfiguration=wanted)
            result.add(f"{what} public access block", "updated" if found["public_access"] else "created", "all four on")
        self._policy(found["policy"], result, what)
        self._lifecycle(found["lifecycle"], result, what)
        lock = (
            "S3 lock file (use_lockfile): nothing to create" if self.env.state.use_lockfile else "no state lock (state.use_lockfile: false)"
        )
        result.add(f"{what} lock", "unchanged", lock)

    def _encryption(self, current: dict[str, Any] | None, result: Result, what: str) -> None:
        rules = (current or {}).get("Rules", [])
        default = rules[0].get("ApplyServerSideEncryptionByDefault", {}) if rules else {}
        if default.get("SSEAlgorithm") in ("aws:kms", "aws:kms:dsse"):
            key = default.get("KMSMasterKeyID")
            result.add(f"{what} encryption", "kept" if key else "unchanged", f"SSE-KMS {key}" if key else "SSE-KMS (aws/s3)")
            return
        config = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}, "BucketKeyEnabled": True}]}
        self.s3.put_bucket_encryption(Bucket=self.bucket, ServerSideEncryptionConfiguration=config)
        result.add(f"{what} encryption", "updated" if default else "created", f"SSE-KMS (was {default.get('SSEAlgorithm', 'none')})")

    def _policy(self, current: dict[str, Any] | None, result: Result, what: str) -> None:
        wanted = tls_statement(self.bucket)
        statements = list((current or {}).get("Statement", []))
        if any(st.get("Sid") == TLS_SID and st == wanted for st in statements):
            result.add(f"{what} TLS-only policy", "unchanged")
            return
        # ours replaces an older statement of the same Sid; every other statement is kept
        kept = [st for st in statements if st.get("Sid") != TLS_SID]
        policy = {
            "Version": "2012-10-17",
            **{k: v for k, v in (current or {}).items() if k not in ("Statement",)},
            "Statement": [*kept, wanted],
        }
        self.s3.put_bucket_policy(Bucket=self.bucket, Policy=json.dumps(policy))
        result.add(f"{what} TLS-only policy", "updated" if current else "created", f"{len(kept)} other statement(s) kept")

    def _lifecycle(self, current: list[dict[str, Any]] | None, result: Result, what: str) -> None:
        rules = list(current or [])
        mine = next((r for r in rules if r.get("ID") == LIFECYCLE_ID), None)
        days = (mine or {}).get("NoncurrentVersionExpiration", {}).get("NoncurrentDays")
        if mine and mine.get("Status") == "Enabled" and days is not None and days >= NONCURRENT_DAYS:
            result.add(f"{what} lifecycle", "unchanged", f"noncurrent versions kept {days} days")
            return
        keep = max(days or 0, NONCURRENT_DAYS)
        rule: dict[str, Any] = {
            "ID": LIFECYCLE_ID,
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "NoncurrentVersionExpiration": {"NoncurrentDays": keep},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
        }
        others = [r for r in rules if r.get("ID") != LIFECYCLE_ID]
        self.s3.put_bucket_lifecycle_configuration(Bucket=self.bucket, LifecycleConfiguration={"Rules": [*others, rule]})
        result.add(
            f"{what} lifecycle",
            "updated" if mine else "created",
            f"noncurrent versions kept {keep} days",
        )


# --- GitHub OIDC and the deploy/plan roles -------------------------------------------------------


def trust_policy(env: Environment, provider_arn: str, purpose: Literal["deploy", "plan"]) -> dict[str, Any]:
    """Who may assume the role: only this repository, and for ``deploy`` only its GitHub
    Environment named like ``env`` (whose protection rules pin the branch and the reviewers)."""
    assert env.ci is not None
    repo = env.ci.repository
    if purpose == "deploy":
        subjects: str | list[str] = f"repo:{repo}:environment:{env.name}"
    else:
        subjects = [f"repo:{repo}:pull_request", f"repo:{repo}:ref:refs/heads/{env.ci.default_branch}"]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {f"{GITHUB_OIDC_HOST}:aud": GITHUB_AUDIENCE, f"{GITHUB_OIDC_HOST}:sub": subjects},
                },
            }
        ],
    }


def state_access_policy(env: Environment, *, write: bool) -> dict[str, Any]:
    """The state objects the role reads (and writes: the deploy role; the lock file: both)."""
    bucket = env.state.bucket
    prefix = f"{env.project}/{env.name}/"
    actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"] if write else ["s3:GetObject"]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "List", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"},
            {"Sid": "State", "Effect": "Allow", "Action": actions, "Resource": f"arn:aws:s3:::{bucket}/{prefix}*"},
            {
                "Sid": "Lock",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": f"arn:aws:s3:::{bucket}/{prefix}*.tflock",
            },
        ],
    }


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


class _GithubRoles:
    def __init__(self, env: Environment) -> None:
        self.env = env
        self.iam = aws.client("iam", None)

    def provider(self, result: Result) -> str:
        assert self.env.aws is not None
        arn = f"arn:aws:iam::{self.env.aws.account_id}:oidc-provider/{GITHUB_OIDC_HOST}"
        listed = {p["Arn"] for p in self.iam.list_open_id_connect_providers().get("OpenIDConnectProviderList", [])}
        existing = next((a for a in listed if a.endswith(f":oidc-provider/{GITHUB_OIDC_HOST}")), None)
        if existing is None:
            arn = self.iam.create_open_id_connect_provider(
                Url=f"https://{GITHUB_OIDC_HOST}", ClientIDList=[GITHUB_AUDIENCE], ThumbprintList=GITHUB_THUMBPRINTS
            )["OpenIDConnectProviderArn"]
            result.add(f"OIDC provider {GITHUB_OIDC_HOST}", "created")
            return str(arn)
        clients = self.iam.get_open_id_connect_provider(OpenIDConnectProviderArn=existing).get("ClientIDList", [])
        if GITHUB_AUDIENCE in clients:
            result.add(f"OIDC provider {GITHUB_OIDC_HOST}", "unchanged")
        else:
            self.iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=existing, ClientID=GITHUB_AUDIENCE)
            result.add(f"OIDC provider {GITHUB_OIDC_HOST}", "updated", f"audience {GITHUB_AUDIENCE} added")
        return str(existing)

    def role(self, purpose: Literal["deploy", "plan"], provider_arn: str, result: Result) -> None:
        from botocore.exceptions import ClientError

        name = self.env.github_role_name(purpose)
        trust = trust_policy(self.env, provider_arn, purpose)
        tags = [{"Key": k, "Value": v} for k, v in sorted(self.env.all_tags.items())]
        try:
            current = self.iam.get_role(RoleName=name)["Role"]
        except ClientError as exc:
            if aws.error_code(exc) != "NoSuchEntity":
                raise
            self.iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=json.dumps(trust),
                Description=f"GitHub Actions {purpose} role of {self.env.name} (infra bootstrap)",
                MaxSessionDuration=3600 * (2 if purpose == "deploy" else 1),
                Tags=tags,
            )
            result.add(f"role {name}", "created", f"trusts {self._subjects(trust)}")
        else:
            doc = current["AssumeRolePolicyDocument"]
            doc = json.loads(doc) if isinstance(doc, str) else doc
            if _same(doc, trust):
                result.add(f"role {name} trust", "unchanged")
            else:
                self.iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
                result.add(f"role {name} trust", "updated", f"now trusts only {self._subjects(trust)}")
        managed = DEPLOY_POLICY if purpose == "deploy" else PLAN_POLICY
        attached = {p["PolicyArn"] for p in self.iam.list_attached_role_policies(RoleName=name).get("AttachedPolicies", [])}
        if managed in attached:
            result.add(f"role {name} {managed.rsplit('/', 1)[1]}", "unchanged")
        else:
            self.iam.attach_role_policy(RoleName=name, PolicyArn=managed)
            result.add(f"role {name} {managed.rsplit('/', 1)[1]}", "created")
        inline = state_access_policy(self.env, write=purpose == "deploy")
        try:
            doc = self.iam.get_role_policy(RoleName=name, PolicyName="terraform-state")["PolicyDocument"]
            doc = json.loads(doc) if isinstance(doc, str) else doc
        except ClientError as exc:
            if aws.error_code(exc) != "NoSuchEntity":
                raise
            doc = None
        if doc is not None and _same(doc, inline):
            result.add(f"role {name} state access", "unchanged")
        else:
            self.iam.put_role_policy(RoleName=name, PolicyName="terraform-state", PolicyDocument=json.dumps(inline))
            result.add(f"role {name} state access", "updated" if doc else "created")

    @staticmethod
    def _subjects(trust: dict[str, Any]) -> str:
        sub = trust["Statement"][0]["Condition"]["StringEquals"][f"{GITHUB_OIDC_HOST}:sub"]
        return ", ".join(sub) if isinstance(sub, list) else str(sub)


# --- GCS state bucket -----------------------------------------------------------------------------


def _gcs_state(env: Environment, result: Result) -> None:
    import google.cloud.storage as storage
    from google.api_core import exceptions

    assert env.gcp is not None, "a gcs backend needs the gcp section (the loader checks this)"
    client = storage.Client(project=env.gcp.project_id)
    what = f"gs://{env.state.bucket}"
    try:
        bucket = client.get_bucket(env.state.bucket)
    except exceptions.NotFound:
        bucket = client.bucket(env.state.bucket)
        bucket.versioning_enabled = True
        bucket.iam_configuration.uniform_bucket_level_access_enabled = True
        bucket.iam_configuration.public_access_prevention = "enforced"
        bucket.labels = dict(env.all_tags)
        client.create_bucket(bucket, location=env.gcp.region)
        result.add(what, "created", env.gcp.region)
        bucket = client.get_bucket(env.state.bucket)  # read back: what the service kept is what counts
    else:
        if bucket.location and bucket.location.lower() != env.gcp.region.lower():
            raise BootstrapRefused(f"state bucket {what} is in {bucket.location}, not {env.gcp.region}; choose another state.bucket")
    changed = []
    if not bucket.versioning_enabled:
        bucket.versioning_enabled = True
        changed.append("versioning")
    if not bucket.iam_configuration.uniform_bucket_level_access_enabled:
        bucket.iam_configuration.uniform_bucket_level_access_enabled = True
        changed.append("uniform bucket-level access")
    if bucket.iam_configuration.public_access_prevention != "enforced":
        bucket.iam_configuration.public_access_prevention = "enforced"
        changed.append("public access prevention")
    if changed:
        bucket.patch()
        result.add(f"{what} settings", "updated", ", ".join(changed))
    elif not result.changed:
        result.add(what, "unchanged")


# --- entry point ----------------------------------------------------------------------------------


def bootstrap(env: Environment, *, roles: bool = True) -> Result:
    """Create or bring up to standard the state and the CI roles of ``env``."""
    result = Result(env.name)
    if roles and env.ci is None:
        raise InfraError(f"{env.name}: no `ci` section (ci.repository names who may assume the roles); add it or pass --no-roles")
    if env.state.backend == "s3":
        state = _S3State(env)
        found = state.inspect()  # may refuse; nothing written yet
        state.apply(found, result)
    else:
        _gcs_state(env, result)
    if roles and env.aws is not None:
        github = _GithubRoles(env)
        provider = github.provider(result)
        purposes: tuple[Literal["deploy", "plan"], ...] = ("deploy", "plan")
        for purpose in purposes:
            github.role(purpose, provider, result)
    if roles and env.gcp is not None and env.ci is not None and env.ci.gcp_workload_identity_provider is None:
        result.add("GCP Workload Identity Federation", "kept", "not configured: see docs/cicd.md (ci.gcp_workload_identity_provider)")
    return result
