"""The AWS half of bootstrap, with boto3 (``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_<SERVICE>``
honoured by botocore; the tests point them at a moto server).

Everything is read first (:meth:`AwsBootstrap.inspect`), and a refusal is raised before anything
is written; then, in this order (each needs the one before):

1. GitHub's OIDC provider;
2. the permissions boundary (a managed policy; the roles below carry it);
3. the deploy role (one OIDC subject; AdministratorAccess inside the boundary; no self-edit);
4. the plan role (three subject patterns; a read allow-list and data denies; one hour);
5. the break-glass role (the account with MFA; AdministratorAccess; no boundary: the way back in);
6. the state key (customer-managed, rotated; the account administers it, the CI roles use it; the
   roles must exist: KMS refuses a key policy naming a principal that does not);
7. the state bucket, encrypted with that key;
8. the roles' state access (and the plan role's data denies, which name the key).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from environments.schema import Environment
from environments.schema.identity import GITHUB_OIDC_HOST
from infra.bootstrap import policies as p
from infra.bootstrap.result import BootstrapRefused, Result
from infra.clouds import aws

# GitHub's published intermediate thumbprints (AWS no longer checks them for this provider, but
# the API still wants one): github.blog/changelog/2023-06-27
GITHUB_THUMBPRINTS = ["6938fd4d98bab03faadb97b34396831e3780aea1", "1c58a3a8518e8759bf075b76b750d4f2df264fcd"]
TLS_SID = "DenyInsecureTransport"
LIFECYCLE_ID = "state-history"
NONCURRENT_DAYS = 90
STATE_POLICY = "terraform-state"
SELF_EDIT_POLICY = "deny-self-edit"
PLAN_READ_POLICY = "plan-read"
PLAN_DENY_POLICY = "plan-deny-data"
SESSION_SECONDS = {"deploy": 2 * 3600, "plan": 3600, "break-glass": 3600}
# IAM is eventually consistent: a role just created may be refused as a KMS key-policy principal
# for a few seconds (MalformedPolicyDocumentException); retried, this long at most
PROPAGATION_SECONDS = 60.0
T = TypeVar("T")
Purpose = Literal["deploy", "plan", "break-glass"]


def _doc(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _code(exc: Exception) -> str:
    return aws.error_code(exc)


def _missing(exc: Exception, *codes: str) -> bool:
    return _code(exc) in codes


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


def retry(call: Callable[[], T], codes: tuple[str, ...], seconds: float = PROPAGATION_SECONDS) -> T:
    """``call()``, again while it fails with one of ``codes`` (IAM propagation), for ``seconds``."""
    from botocore.exceptions import ClientError

    deadline = time.monotonic() + seconds
    delay = 1.0
    while True:
        try:
            return call()
        except ClientError as exc:
            if _code(exc) not in codes or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


@dataclass
class Found:
    """What exists before anything is written."""

    bucket: dict[str, Any] = field(default_factory=dict)
    key: dict[str, Any] | None = None  # KeyMetadata of the alias's key
    roles: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    connection: dict[str, Any] | None = None  # the runner's GitHub connection (ListConnections item)


class AwsBootstrap:
    def __init__(self, env: Environment, result: Result, *, roles: bool = True, check_account: bool = True) -> None:
        self.env = env
        self.check_account = check_account
        self.result = result
        self.with_roles = roles and env.aws is not None
        self.region = env.state_region or (env.aws.region if env.aws else "us-east-1")
        self.bucket = env.state.bucket
        self.s3_state = env.state.backend == "s3"
        self.s3 = aws.client("s3", self.region)
        self.kms = aws.client("kms", self.region)
        self.iam = aws.client("iam", None)
        self.caller_account = env.aws.account_id if env.aws else ""

    # --- reading --------------------------------------------------------------------------------

    def inspect(self) -> Found:
        found = Found()
        if self.env.aws is not None:
            self.caller_account = aws.client("sts", self.region).get_caller_identity()["Account"]
            if self.check_account:
                self._check_account()
        if self.with_roles:
            found.key = self._state_key()
            for purpose in ("deploy", "plan", "break-glass"):
                found.roles[purpose] = self._inspect_role(purpose)
            if self.env.has_ci_runner and self.env.aws is not None:
                found.connection = aws.github_connection(self.env.github_connection_name, self.env.aws.region)
        if self.s3_state:
            found.bucket = self._inspect_bucket(found.key)
        return found

    def _check_account(self) -> None:
        assert self.env.aws is not None
        account = self.caller_account
        if account != self.env.aws.account_id:
            raise BootstrapRefused(
                f"these credentials are for account {account}, {self.env.name} names aws.account_id {self.env.aws.account_id}; "
                "use credentials of that account (or correct aws.account_id)"
            )

    def _state_key(self) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            meta: dict[str, Any] = self.kms.describe_key(KeyId=self.env.state_key_alias)["KeyMetadata"]
        except ClientError as exc:
            if _missing(exc, "NotFoundException"):
                return None
            raise
        alias = self.env.state_key_alias
        if meta.get("KeyState") != "Enabled":
            raise BootstrapRefused(
                f"state key {alias} ({meta['Arn']}) is {meta.get('KeyState')}; bootstrap does not re-enable or replace a key: "
                "cancel its deletion / enable it (aws kms cancel-key-deletion, aws kms enable-key), then run again"
            )
        if meta.get("KeySpec", "SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT" or meta.get("KeyUsage", "ENCRYPT_DECRYPT") != "ENCRYPT_DECRYPT":
            raise BootstrapRefused(
                f"state key {alias} is {meta.get('KeySpec')}/{meta.get('KeyUsage')}; S3 needs a symmetric ENCRYPT_DECRYPT key"
            )
        return meta

    def _role_name(self, purpose: Purpose) -> str:
        if purpose == "break-glass":
            return self.env.resource_name("break-glass")
        return self.env.github_role_name(purpose)

    def _inspect_role(self, purpose: Purpose) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        name = self._role_name(purpose)
        try:
            role: dict[str, Any] = self.iam.get_role(RoleName=name)["Role"]
        except ClientError as exc:
            if _missing(exc, "NoSuchEntity"):
                return None
            raise
        boundary = (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
        if purpose != "break-glass" and boundary not in (None, p.boundary_arn(self.env)):
            raise BootstrapRefused(
                f"role {name} carries the permissions boundary {boundary}, not {p.boundary_arn(self.env)}; bootstrap does not "
                "replace another boundary: remove it by hand (aws iam delete-role-permissions-boundary), then run again"
            )
        role["_attached"] = [a["PolicyArn"] for a in self.iam.list_attached_role_policies(RoleName=name).get("AttachedPolicies", [])]
        role["_inline"] = self.iam.list_role_policies(RoleName=name).get("PolicyNames", [])
        if purpose == "plan":
            extra = [a for a in role["_attached"] if a != p.LEGACY_PLAN_POLICY]
            extra += [i for i in role["_inline"] if i not in (STATE_POLICY, PLAN_READ_POLICY, PLAN_DENY_POLICY)]
            if extra:
                raise BootstrapRefused(
                    f"role {name} has policies bootstrap did not put there ({', '.join(extra)}); the plan role reads no data, and "
                    "bootstrap does not delete policies: detach or delete them by hand, then run again"
                )
        if purpose == "break-glass" and not p.requires_mfa(_doc(role["AssumeRolePolicyDocument"])):
            raise BootstrapRefused(
                f"role {name} can be assumed without MFA; bootstrap does not rewrite a break-glass trust it did not write: "
                "add Condition Bool aws:MultiFactorAuthPresent true to each Allow (or delete the role), then run again"
            )
        return role

    def _inspect_bucket(self, key: dict[str, Any] | None) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = _code(exc)
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
        found["sse_key"] = self._classify_encryption(found["encryption"], key)
        return found

    def _classify_encryption(self, current: dict[str, Any] | None, key: dict[str, Any] | None) -> str:
        """``ours`` (the state key), ``aws-managed`` (aws/s3 or SSE-S3 or none: strengthened), or a refusal."""
        from botocore.exceptions import ClientError

        rules = (current or {}).get("Rules", [])
        default = rules[0].get("ApplyServerSideEncryptionByDefault", {}) if rules else {}
        key_id = default.get("KMSMasterKeyID")
        if default.get("SSEAlgorithm") not in ("aws:kms", "aws:kms:dsse") or not key_id:
            return "aws-managed"
        if key and key_id in (key["Arn"], key["KeyId"], self.env.state_key_alias, p.state_alias_arn(self.env)):
            return "ours"
        try:
            meta = self.kms.describe_key(KeyId=key_id)["KeyMetadata"]
        except ClientError:
            meta = {}
        if meta.get("KeyManager") == "AWS":
            return "aws-managed"
        raise BootstrapRefused(
            f"state bucket {self.bucket} is encrypted with the customer-managed key {key_id}, not {self.env.state_key_alias}; "
            "bootstrap does not re-key a state bucket: point the alias at that key (aws kms update-alias) or choose another "
            "state.bucket, then run again"
        )

    def _get(self, method: str, key: str, missing: str) -> Any:
        from botocore.exceptions import ClientError

        try:
            return getattr(self.s3, method)(Bucket=self.bucket).get(key)
        except ClientError as exc:
            if _code(exc) == missing:
                return None
            raise

    # --- writing --------------------------------------------------------------------------------

    def apply(self, found: Found) -> None:
        key_arn: str | None = found.key["Arn"] if found.key else None
        if self.with_roles:
            provider = self._provider()
            self._boundary()
            self._role("deploy", found.roles.get("deploy"), p.deploy_trust(self.env, provider))
            self._role("plan", found.roles.get("plan"), p.plan_trust(self.env, provider))
            self._role("break-glass", found.roles.get("break-glass"), p.break_glass_trust(self.env))
            if self.s3_state:
                key_arn = self._key(found.key)
        if self.s3_state:
            self._bucket(found.bucket, key_arn if self.with_roles else None)
        if self.with_roles:
            if self.s3_state:
                self._inline("deploy", STATE_POLICY, p.state_access_policy(self.env, write=True))
                self._inline("plan", STATE_POLICY, p.state_access_policy(self.env, write=False))
            self._inline("plan", PLAN_DENY_POLICY, p.plan_deny_policy(self.env, key_arn))
            if self.env.has_ci_runner:
                self._connection(found.connection)

    def _connection(self, current: dict[str, Any] | None) -> None:
        """The GitHub connection the CodeBuild runner's project reads by name (a data source: the
        first plan fails while it does not exist). Created PENDING: its OAuth handshake has no API."""
        assert self.env.aws is not None
        name = self.env.github_connection_name
        what = f"GitHub connection {name}"
        console = "complete it once: console › Developer Tools › Settings › Connections › Update pending connection"
        if current is None:
            aws.client("codestar-connections", self.env.aws.region).create_connection(
                ProviderType="GitHub", ConnectionName=name, Tags=self._tags()
            )
            self.result.add(what, "created", f"PENDING: {console} (infra preflight checks it)")
            return
        status = current.get("ConnectionStatus")
        if status == "ERROR":
            self.result.findings.append(
                f"{what} is in ERROR: delete it (aws codestar-connections delete-connection) and run bootstrap again"
            )
        self.result.add(what, "unchanged", str(status) + ("" if status == "AVAILABLE" else f": {console}"))

    def _provider(self) -> str:
        host = GITHUB_OIDC_HOST
        listed = [x["Arn"] for x in self.iam.list_open_id_connect_providers().get("OpenIDConnectProviderList", [])]
        existing = next((a for a in listed if a.endswith(f":oidc-provider/{host}")), None)
        if existing is None:
            arn = self.iam.create_open_id_connect_provider(
                Url=f"https://{host}", ClientIDList=[p.GITHUB_AUDIENCE], ThumbprintList=GITHUB_THUMBPRINTS
            )["OpenIDConnectProviderArn"]
            self.result.add(f"OIDC provider {host}", "created")
            return str(arn)
        clients = self.iam.get_open_id_connect_provider(OpenIDConnectProviderArn=existing).get("ClientIDList", [])
        if p.GITHUB_AUDIENCE in clients:
            self.result.add(f"OIDC provider {host}", "unchanged")
        else:
            self.iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=existing, ClientID=p.GITHUB_AUDIENCE)
            self.result.add(f"OIDC provider {host}", "updated", f"audience {p.GITHUB_AUDIENCE} added")
        return str(existing)

    def _boundary(self) -> None:
        from botocore.exceptions import ClientError

        name = p.boundary_arn(self.env).rsplit("/", 1)[1]
        arn = f"arn:aws:iam::{self.caller_account}:policy/{name}"  # the same ARN, unless check_account is off
        document = p.boundary_policy(self.env)
        what = f"permissions boundary {name}"
        try:
            policy = self.iam.get_policy(PolicyArn=arn)["Policy"]
        except ClientError as exc:
            if not _missing(exc, "NoSuchEntity"):
                raise
            self.iam.create_policy(
                PolicyName=name,
                PolicyDocument=json.dumps(document),
                Description=f"Permissions boundary of every role of {self.env.name} (infra bootstrap)",
                Tags=self._tags(),
            )
            self.result.add(what, "created", f"{len(document['Statement'])} statements")
            return
        current = _doc(self.iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])["PolicyVersion"]["Document"])
        if _same(current, document):
            self.result.add(what, "unchanged")
            return
        versions = self.iam.list_policy_versions(PolicyArn=arn)["Versions"]
        if len(versions) >= 5:  # IAM keeps five versions: the oldest non-default one makes room
            oldest = min((v for v in versions if not v["IsDefaultVersion"]), key=lambda v: v["CreateDate"])
            self.iam.delete_policy_version(PolicyArn=arn, VersionId=oldest["VersionId"])
        self.iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(document), SetAsDefault=True)
        self.result.add(what, "updated", "new default version")

    def _tags(self) -> list[dict[str, str]]:
        return [{"Key": k, "Value": v} for k, v in sorted(self.env.all_tags.items())]

    def _role(self, purpose: Purpose, current: dict[str, Any] | None, trust: dict[str, Any]) -> None:
        name = self._role_name(purpose)
        bounded = purpose != "break-glass"
        subjects = self._subjects(trust)
        if current is None:
            kwargs: dict[str, Any] = {}
            if bounded:
                kwargs["PermissionsBoundary"] = p.boundary_arn(self.env)
            self.iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=json.dumps(trust),
                Description=f"{'GitHub Actions ' + purpose if bounded else 'Break-glass administrator'} role of {self.env.name} (infra bootstrap)",
                MaxSessionDuration=SESSION_SECONDS[purpose],
                Tags=self._tags(),
                **kwargs,
            )
            self.result.add(f"role {name}", "created", f"trusts {subjects}")
            current = {"_attached": [], "_inline": [], "MaxSessionDuration": SESSION_SECONDS[purpose], "AssumeRolePolicyDocument": trust}
            if bounded:
                current["PermissionsBoundary"] = {"PermissionsBoundaryArn": p.boundary_arn(self.env)}
        else:
            doc = _doc(current["AssumeRolePolicyDocument"])
            if _same(doc, trust):
                self.result.add(f"role {name} trust", "unchanged")
            elif purpose == "break-glass":
                self.result.add(f"role {name} trust", "kept", "differs from bootstrap's, and requires MFA")
            else:
                self.iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
                self.result.add(f"role {name} trust", "updated", f"now trusts only {subjects}")
            if bounded and not current.get("PermissionsBoundary"):
                self.iam.put_role_permissions_boundary(RoleName=name, PermissionsBoundary=p.boundary_arn(self.env))
                self.result.add(f"role {name} boundary", "updated", p.boundary_arn(self.env))
            if current.get("MaxSessionDuration") != SESSION_SECONDS[purpose]:
                self.iam.update_role(RoleName=name, MaxSessionDuration=SESSION_SECONDS[purpose])
                self.result.add(f"role {name} session", "updated", f"at most {SESSION_SECONDS[purpose] // 60} minutes")
        if purpose in ("deploy", "break-glass"):
            self._attached(name, current, p.ADMINISTRATOR_ACCESS)
        if purpose == "deploy":
            self._inline("deploy", SELF_EDIT_POLICY, p.deploy_self_edit_deny(self.env), known=current["_inline"])
        if purpose == "plan":
            if p.LEGACY_PLAN_POLICY in current["_attached"]:
                self.iam.detach_role_policy(RoleName=name, PolicyArn=p.LEGACY_PLAN_POLICY)
                self.result.add(f"role {name} ReadOnlyAccess", "updated", "detached: it reads data (objects, logs, images)")
            self._inline("plan", PLAN_READ_POLICY, p.plan_read_policy(self.env), known=current["_inline"])

    def _attached(self, name: str, current: dict[str, Any], policy: str) -> None:
        short = policy.rsplit("/", 1)[1]
        if policy in current["_attached"]:
            self.result.add(f"role {name} {short}", "unchanged")
        else:
            self.iam.attach_role_policy(RoleName=name, PolicyArn=policy)
            self.result.add(f"role {name} {short}", "created")

    def _inline(self, purpose: Purpose, policy: str, document: dict[str, Any], known: list[str] | None = None) -> None:
        from botocore.exceptions import ClientError

        name = self._role_name(purpose)
        what = f"role {name} {policy}"
        current = None
        if known is None or policy in known:
            try:
                current = _doc(self.iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"])
            except ClientError as exc:
                if not _missing(exc, "NoSuchEntity"):
                    raise
        if current is not None and _same(current, document):
            self.result.add(what, "unchanged")
            return
        self.iam.put_role_policy(RoleName=name, PolicyName=policy, PolicyDocument=json.dumps(document))
        self.result.add(what, "updated" if current is not None else "created")

    @staticmethod
    def _subjects(trust: dict[str, Any]) -> str:
        condition = trust["Statement"][0].get("Condition", {})
        subs = [
            *[v for k, v in condition.get("StringEquals", {}).items() if k.endswith(":sub")],
            *[v for k, v in condition.get("StringLike", {}).items() if k.endswith(":sub")],
        ]
        if not subs:
            return f"{trust['Statement'][0]['Principal']['AWS']} with MFA"
        flat = [s for v in subs for s in (v if isinstance(v, list) else [v])]
        return ", ".join(flat)

    def _key(self, current: dict[str, Any] | None) -> str:
        alias = self.env.state_key_alias
        document = p.key_policy(self.env)
        if current is None:
            created = retry(
                lambda: self.kms.create_key(
                    Policy=json.dumps(document),
                    Description=f"Terraform state of {self.env.name} (infra bootstrap)",
                    KeyUsage="ENCRYPT_DECRYPT",
                    KeySpec="SYMMETRIC_DEFAULT",
                    Tags=[{"TagKey": k, "TagValue": v} for k, v in sorted(self.env.all_tags.items())],
                ),
                ("MalformedPolicyDocumentException",),
            )["KeyMetadata"]
            self.kms.enable_key_rotation(KeyId=created["KeyId"])
            self.kms.create_alias(AliasName=alias, TargetKeyId=created["KeyId"])
            self.result.add(f"KMS key {alias}", "created", "rotation on; the account administers it, the CI roles use it")
            return str(created["Arn"])
        key_id = current["KeyId"]
        if self.kms.get_key_rotation_status(KeyId=key_id).get("KeyRotationEnabled"):
            self.result.add(f"KMS key {alias} rotation", "unchanged")
        else:
            self.kms.enable_key_rotation(KeyId=key_id)
            self.result.add(f"KMS key {alias} rotation", "updated", "on")
        policy = _doc(self.kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
        statements = list(policy.get("Statement", []))
        ours = {st["Sid"]: st for st in document["Statement"]}
        if all(any(_same(st, want) for st in statements) for want in ours.values()):
            self.result.add(f"KMS key {alias} policy", "unchanged")
        else:
            kept = [st for st in statements if st.get("Sid") not in ours]
            merged = {**policy, "Version": p.VERSION, "Statement": [*document["Statement"], *kept]}
            retry(
                lambda: self.kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(merged)),
                ("MalformedPolicyDocumentException",),
            )
            self.result.add(f"KMS key {alias} policy", "updated", f"{len(kept)} other statement(s) kept")
        return str(current["Arn"])

    # --- the state bucket ------------------------------------------------------------------------

    def _bucket(self, found: dict[str, Any], key_arn: str | None) -> None:
        what = f"s3://{self.bucket}"
        if not found["exists"]:
            kwargs: dict[str, Any] = {"Bucket": self.bucket}
            if self.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            self.s3.create_bucket(**kwargs)
            self.result.add(what, "created", self.region)
            found = {
                "exists": True, "versioning": {}, "encryption": None, "public_access": None, "policy": None, "lifecycle": None,
                "sse_key": "aws-managed",
            }  # fmt: skip
        # versioning: the state's history; with MFA delete on, it is already Enabled and left alone
        if found["versioning"].get("Status") == "Enabled":
            self.result.add(f"{what} versioning", "unchanged")
        else:
            self.s3.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"})
            self.result.add(f"{what} versioning", "updated" if found["versioning"].get("Status") else "created", "Enabled")
        self._encryption(found, key_arn, what)
        wanted = dict.fromkeys(("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True)
        if found["public_access"] == wanted:
            self.result.add(f"{what} public access block", "unchanged")
        else:
            self.s3.put_public_access_block(Bucket=self.bucket, PublicAccessBlockConfiguration=wanted)
            self.result.add(f"{what} public access block", "updated" if found["public_access"] else "created", "all four on")
        self._policy(found["policy"], what)
        self._lifecycle(found["lifecycle"], what)
        lock = (
            "S3 lock file (use_lockfile): nothing to create" if self.env.state.use_lockfile else "no state lock (state.use_lockfile: false)"
        )
        self.result.add(f"{what} lock", "unchanged", lock)

    def _encryption(self, found: dict[str, Any], key_arn: str | None, what: str) -> None:
        rules = (found["encryption"] or {}).get("Rules", [])
        default = rules[0].get("ApplyServerSideEncryptionByDefault", {}) if rules else {}
        if found["sse_key"] == "ours":
            self.result.add(f"{what} encryption", "unchanged", f"SSE-KMS {self.env.state_key_alias}")
            return
        if key_arn is None:  # --no-roles (or no aws section): no state key; SSE-KMS with aws/s3 at least
            if default.get("SSEAlgorithm") in ("aws:kms", "aws:kms:dsse"):
                self.result.add(f"{what} encryption", "unchanged", "SSE-KMS (aws/s3); the state key comes with the roles")
                return
            rule: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}, "BucketKeyEnabled": True}
            detail = "SSE-KMS (aws/s3)"
        else:
            rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}, "BucketKeyEnabled": True}
            detail = f"SSE-KMS {self.env.state_key_alias}"
        self.s3.put_bucket_encryption(Bucket=self.bucket, ServerSideEncryptionConfiguration={"Rules": [rule]})
        was = default.get("SSEAlgorithm", "none") + (" (aws/s3)" if default.get("SSEAlgorithm") == "aws:kms" else "")
        self.result.add(f"{what} encryption", "updated" if default else "created", f"{detail} (was {was})")

    def _policy(self, current: dict[str, Any] | None, what: str) -> None:
        wanted = tls_statement(self.bucket)
        statements = list((current or {}).get("Statement", []))
        if any(st.get("Sid") == TLS_SID and st == wanted for st in statements):
            self.result.add(f"{what} TLS-only policy", "unchanged")
            return
        # ours replaces an older statement of the same Sid; every other statement is kept
        kept = [st for st in statements if st.get("Sid") != TLS_SID]
        policy = {"Version": "2012-10-17", **{k: v for k, v in (current or {}).items() if k != "Statement"}, "Statement": [*kept, wanted]}
        self.s3.put_bucket_policy(Bucket=self.bucket, Policy=json.dumps(policy))
        self.result.add(f"{what} TLS-only policy", "updated" if current else "created", f"{len(kept)} other statement(s) kept")

    def _lifecycle(self, current: list[dict[str, Any]] | None, what: str) -> None:
        rules = list(current or [])
        mine = next((r for r in rules if r.get("ID") == LIFECYCLE_ID), None)
        days = (mine or {}).get("NoncurrentVersionExpiration", {}).get("NoncurrentDays")
        if mine and mine.get("Status") == "Enabled" and days is not None and days >= NONCURRENT_DAYS:
            self.result.add(f"{what} lifecycle", "unchanged", f"noncurrent versions kept {days} days")
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
        self.result.add(f"{what} lifecycle", "updated" if mine else "created", f"noncurrent versions kept {keep} days")


def bootstrap_aws(env: Environment, result: Result, *, roles: bool = True, check_account: bool = True) -> None:
    work = AwsBootstrap(env, result, roles=roles, check_account=check_account)
    found = work.inspect()  # may refuse; nothing written yet
    work.apply(found)
