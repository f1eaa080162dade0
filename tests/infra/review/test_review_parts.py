"""The review's parts on their own inputs: the permission delta, sensitive values, plan JSON (from
the real engine and recorded provider-shaped fixtures), the Markdown size budget, parity."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from environments.loader import load_environments
from infra import engine, parity
from infra.changes.diff import diff_stacks
from infra.changes.plan import changes_from_plan, load_plan
from infra.changes.table import load_table
from infra.cli.app import main
from infra.markdown import MARKDOWN_LIMIT
from infra.review import iam
from infra.review.compare import review
from infra.review.report import markdown
from infra.synthesized.paths import flatten
from infra.synthesized.reader import Stack
from infra.synthesized.secrets import MASK
from tests.conftest import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "plans"


def _stack(resources: dict[str, dict[str, Any]], name: str = "dev") -> Stack:
    raw: dict[str, Any] = {"resource": {}}
    for address, values in resources.items():
        rtype, rname = address.split(".", 1)
        raw["resource"].setdefault(rtype, {})[rname] = {"//": {"metadata": {"path": f"{name}/{rname}"}}, **values}
    return Stack(name, Path(f"/nowhere/{name}/cdk.tf.json"), raw)


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_permission_delta_flags_what_broadens_access() -> None:
    base = _stack(
        {
            "aws_iam_role.app": {
                "assume_role_policy": _policy(
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                )
            },
            "aws_iam_role_policy.app": {
                "role": "${aws_iam_role.app.id}",
                "policy": _policy(
                    {
                        "Effect": "Allow",
                        "Action": ["s3:GetObject"],
                        "Resource": ["arn:aws:s3:::models/*"],
                        "Condition": {"Bool": {"aws:SecureTransport": "true"}},
                    }
                ),
            },
            "google_project_iam_member.reader": {
                "project": "p",
                "role": "roles/storage.objectViewer",
                "member": "serviceAccount:a@p.iam.gserviceaccount.com",
            },
        }
    )
    head = _stack(
        {
            "aws_iam_role.app": {
                "assume_role_policy": _policy(
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"},
                    {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"}, "Action": "sts:AssumeRole"},
                )
            },
            "aws_iam_role_policy.app": {
                "role": "${aws_iam_role.app.id}",
                "policy": _policy(
                    {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::models/*"]},
                    {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"},
                ),
            },
            "google_project_iam_member.reader": {
                "project": "p",
                "role": "roles/storage.objectViewer",
                "member": "serviceAccount:a@p.iam.gserviceaccount.com",
            },
            "google_project_iam_member.everyone": {"project": "p", "role": "roles/editor", "member": "allUsers"},
            "aws_lambda_function_url.url": {"function_name": "f", "authorization_type": "NONE"},
        }
    )
    changes = iam.delta(iam.grants(base), iam.grants(head))
    flags = {(c.change, c.grant.kind, c.grant.action, c.grant.principal): set(c.flags) for c in changes}
    assert flags == {
        ("added", "trust-policy", "sts:AssumeRole", "AWS:arn:aws:iam::999999999999:root"): {"new principal", "trust policy admits more"},
        ("added", "identity-policy", "ec2:*", "role ${dev/app.id}"): {"wildcard action", "wildcard resource"},
        ("added", "identity-policy", "s3:GetObject", "role ${dev/app.id}"): {"condition removed"},
        ("removed", "identity-policy", "s3:GetObject", "role ${dev/app.id}"): set(),
        ("added", "iam-binding", "roles/editor", "allUsers"): {"public", "admin role"},
        ("added", "function-url", "lambda:InvokeFunctionUrl", "*"): {"public"},
    }


def test_sensitive_values_are_masked_but_their_change_is_shown() -> None:
    table = load_table()
    base = _stack(
        {"aws_lambda_function.f": {"function_name": "f", "environment": {"variables": {"DB_PASSWORD": "hunter2", "MODEL": "v1"}}}}
    )
    head = _stack(
        {"aws_lambda_function.f": {"function_name": "f", "environment": {"variables": {"DB_PASSWORD": "hunter3", "MODEL": "v1"}}}}
    )
    (change,) = diff_stacks(base, head, table)
    (attr,) = change.attrs
    assert (attr.path, attr.before, attr.after, attr.sensitive) == ("environment.variables.DB_PASSWORD", MASK, MASK, True)
    assert "hunter" not in json.dumps(change.to_dict())


def test_replacement_follows_references_to_a_replaced_resource() -> None:
    table = load_table()
    cluster = {"role_arn": "arn:r", "vpc_config": {"subnet_ids": ["s"]}}
    group = {"cluster_name": "${aws_eks_cluster.c.id}", "node_group_name": "g", "node_role_arn": "arn:n", "scaling_config": {"min_size": 1}}
    base = _stack({"aws_eks_cluster.c": {"name": "one", **cluster}, "aws_eks_node_group.g": group}, "production")
    head = _stack({"aws_eks_cluster.c": {"name": "two", **cluster}, "aws_eks_node_group.g": group}, "production")
    changes = {c.type: c for c in diff_stacks(base, head, table)}
    assert changes["aws_eks_cluster"].action == "replace" and changes["aws_eks_cluster"].reasons == ["`name` forces replacement"]
    assert changes["aws_eks_node_group"].action == "replace" and changes["aws_eks_node_group"].has_capacity
    assert "refers to `production/c.id`" in changes["aws_eks_node_group"].reasons[0]
    assert "eks_cluster" in changes["aws_eks_cluster"].citation
    # a fixed node_group_name: the replacement destroys the group first, and the review says so
    assert any("destroyed before the new one is created" in r and "outage" in r for r in changes["aws_eks_node_group"].reasons)


def test_recorded_provider_plan_gives_planned_actions_and_reasons() -> None:
    plan = load_plan(FIXTURES / "staging-aws-gcp.json")
    changes = {c.type: c for c in changes_from_plan(plan, None, load_table())}
    assert set(changes) == {"aws_eks_node_group", "google_container_node_pool", "google_service_account", "aws_lambda_function"}
    group = changes["aws_eks_node_group"]
    assert (group.action, group.source, group.label, group.has_capacity) == ("replace", "plan", "replacement (planned)", True)
    assert group.reasons == [
        "the provider cannot update `instance_types` in place",
        # a fixed-name node group cannot be created before the old one is gone (no create_before_destroy)
        "the plan destroys it before it creates the new one: it is gone until the new one is ready, an outage of its nodes",
    ]
    assert [(a.path, a.before, a.after, a.forces) for a in group.attrs if a.path.startswith("instance")] == [
        ("instance_types[0]", "g6.xlarge", "g6.2xlarge", "plan")
    ]
    assert any(a.path == "arn" and a.after == "(known after apply)" for a in group.attrs)
    pool = changes["google_container_node_pool"]
    assert pool.action == "update" and [(a.path, a.before, a.after) for a in pool.attrs] == [("autoscaling[0].max_node_count", 3, 4)]
    moved = changes["google_service_account"]
    assert (moved.action, moved.moved_from) == ("move", "google_service_account.old-build_account_11111111")
    secret = [a for a in changes["aws_lambda_function"].attrs if "API_TOKEN" in a.path]
    assert secret and all(a.before == MASK and a.after == MASK for a in secret)


def _engine_config(work: Path, version: str, *, endpoint: bool = True, moved: bool = False) -> None:
    work.mkdir(parents=True, exist_ok=True)
    resources: dict[str, Any] = {"terraform_data": {("model2" if moved else "model"): {"input": f"model-{version}"}}}
    model = "model2" if moved else "model"
    if endpoint:
        resources["terraform_data"]["endpoint"] = {"input": "endpoint", "triggers_replace": [version]}
    config: dict[str, Any] = {
        "terraform": {"backend": {"local": {"path": "terraform.tfstate"}}},
        "resource": resources,
        "output": {"model": {"value": f"${{terraform_data.{model}.output}}"}},
    }
    if moved:
        config["moved"] = [{"from": "terraform_data.model", "to": "terraform_data.model2"}]
    (work / "main.tf.json").write_text(json.dumps(config))


def _engine(work: Path, command: str, *args: str) -> tuple[int, str]:
    code, out, err = engine.run(command, ["-input=false", "-no-color", *args] if command != "show" else list(args), cwd=work)
    assert code in (0, 2), err or out
    return code, out


def test_plan_json_from_the_real_engine(tmp_path: Path) -> None:
    work = tmp_path / "stack"
    _engine_config(work, "v1")
    _engine(work, "init")
    _engine(work, "apply", "-auto-approve")
    _engine_config(work, "v2", moved=True)
    code, _ = _engine(work, "plan", "-detailed-exitcode", "-out=plan.tfplan")
    assert code == 2
    _, shown = _engine(work, "show", "-json", "plan.tfplan")
    changes = {c.address: c for c in changes_from_plan(json.loads(shown), None, load_table())}
    assert changes["terraform_data.endpoint"].action == "replace"
    assert changes["terraform_data.endpoint"].reasons == ["the provider cannot update `triggers_replace` in place"]
    assert [a.forces for a in changes["terraform_data.endpoint"].attrs if a.path.startswith("triggers_replace")] == ["plan"]
    model = changes["terraform_data.model2"]
    assert (model.action, model.moved_from) == ("update", "terraform_data.model")  # moved, and its input updated in place
    assert ("input", "model-v1", "model-v2") in [(a.path, a.before, a.after) for a in model.attrs]
    assert all(c.source == "plan" for c in changes.values())


def test_markdown_stays_under_the_limit_on_thousands_of_changes(tmp_path: Path) -> None:
    def outdir(path: Path, resources: dict[str, dict[str, Any]]) -> Path:
        (path / "stacks" / "dev").mkdir(parents=True)
        (path / "stacks" / "dev" / "cdk.tf.json").write_text(json.dumps({"resource": {"aws_sqs_queue": resources}}))
        (path / "manifest.json").write_text(json.dumps({"stacks": {"dev": {"synthesizedStackPath": "stacks/dev/cdk.tf.json"}}}))
        return path

    meta = lambda i: {"//": {"metadata": {"path": f"dev/queues/q{i}"}}}  # noqa: E731
    base = outdir(tmp_path / "base", {f"q{i}": {**meta(i), "name": f"q{i}", "delay_seconds": 0} for i in range(3000)})
    head = outdir(
        tmp_path / "head",
        {f"q{i}": {**meta(i), "name": f"q{i}" if i % 2 else f"renamed-{i}", "delay_seconds": 5} for i in range(500, 4000)},
    )
    result = review(base, ROOT / "environments", head, ROOT / "environments", names=["dev"], checks=())
    text = markdown(result)
    full = markdown(result, limit=None)
    assert len(text) <= MARKDOWN_LIMIT < len(full)
    assert "| dev | 1000 | 1250 | 500 | 1250 | 0 |" in text  # the summary row is never cut
    assert "shortened to stay under 65,536 characters" in text and "reports/review.md" in text


def test_parity_passes_on_declared_differences_and_names_an_undeclared_one(synth_out: Path, tmp_path: Path) -> None:
    envs = load_environments()
    result = parity.compare(synth_out, envs["staging"], envs["production"])
    assert result.ok and result.mapped > 50 and len(result.differences) > 50
    by_attr = {(d.resource, d.attribute): d for d in result.differences}
    assert by_attr[("aws-eks/system/node-group", "instance_types[0]")].explained_by == ("aws.cluster.system_node_group.instance_types[0]",)
    assert by_attr[("aws-network/private-1", "cidr_block")].explained_by == ("aws.network.cidr",)
    assert {d.resource for d in result.differences if d.kind == "only-in-b"} >= {"aws-gpu-l4-burst/group/node-group", "aws-network/nat-1"}
    assert main(["parity", "staging", "production", "--outdir", str(synth_out)]) == 0

    copy = tmp_path / "out"
    shutil.copytree(synth_out, copy)
    path = copy / "stacks" / "production" / "cdk.tf.json"
    data = json.loads(path.read_text())
    cluster = next(iter(data["resource"]["aws_eks_cluster"].values()))
    cluster["enabled_cluster_log_types"] = ["api"]
    path.write_text(json.dumps(data))
    broken = parity.compare(copy, envs["staging"], envs["production"])
    assert [(d.resource, d.attribute) for d in broken.unexplained][:1] == [("aws-eks/cluster", "enabled_cluster_log_types[1]")]
    assert all(d.resource == "aws-eks/cluster" and d.attribute.startswith("enabled_cluster_log_types") for d in broken.unexplained)
    assert main(["parity", "staging", "production", "--outdir", str(copy)]) == 1
    assert main(["parity", "staging", "nowhere", "--outdir", str(copy)]) == 2


def test_flatten_steps_into_documents_held_in_strings() -> None:
    leaves = flatten({"policy": json.dumps({"Statement": [{"Action": ["a", "b"]}]}), "values": ["replicas: 2\nimage: {tag: v1}\n"]})
    assert leaves == {
        "policy{}.Statement[0].Action[0]": "a",
        "policy{}.Statement[0].Action[1]": "b",
        "values[0]{}.image.tag": "v1",
        "values[0]{}.replicas": 2,
    }


def test_plan_file_errors_are_usage_errors(tmp_path: Path) -> None:
    bad = tmp_path / "plan.json"
    bad.write_text("{}")
    with pytest.raises(Exception, match="format_version"):
        load_plan(bad)


def test_the_replacement_table_covers_every_type_the_stacks_synthesize(synth_out: Path) -> None:
    """The table says it covers every resource type of our stacks: a new type needs its entry."""
    from infra.synthesized.reader import load_stacks

    table = load_table()
    types = {r.type for s in load_stacks(synth_out) for r in s.resources}
    assert sorted(t for t in types if table.rule(t) is None) == []
    assert table.rule("aws_s3_bucket").stateful == "always" and table.rule("aws_sns_topic").stateful == "always"  # type: ignore[union-attr]


def test_parity_lines_policy_statements_up_by_sid(synth_out: Path, environments: dict) -> None:  # type: ignore[type-arg]
    """Policies compare statement by statement (by Sid), so `promotes_to` explains only the promotion
    statements of staging's registry bucket and key, never another statement of the same policy."""
    from infra.parity import _by_sid, compare

    doc = json.dumps({"Version": "2012-10-17", "Statement": [{"Sid": "A", "Effect": "Allow"}, {"Sid": "B", "Effect": "Deny"}]})
    assert json.loads(_by_sid(doc))["Statement"] == {"A": {"Sid": "A", "Effect": "Allow"}, "B": {"Sid": "B", "Effect": "Deny"}}
    unnamed = json.dumps({"Statement": [{"Effect": "Allow"}]})
    assert _by_sid(unnamed) == unnamed  # without a Sid on each statement, positions stay
    result = compare(synth_out, environments["staging"], environments["production"])
    by_promotion = [d for d in result.differences if d.explained_by == ("promotes_to",) and "policy" in d.attribute]
    assert by_promotion and all(".Statement.Promotion" in d.attribute for d in by_promotion)
    assert {d.resource for d in by_promotion} == {"aws-kms/key", "aws-models/bucket/policy", "registries:aws-ecr-model-server/policy"}


def test_unchanged_environments_are_counted_not_listed() -> None:
    from infra.review.compare import EnvReview, Review
    from infra.review.report import summary_rows, tables

    changed = EnvReview(
        "dev", "changed", False, "h1", "b1", changes=diff_stacks(_stack({}), _stack({"aws_sqs_queue.q": {"name": "q"}}), load_table())
    )
    quiet = [EnvReview(f"env{i}", "unchanged", False, f"h{i}", f"h{i}") for i in range(11)]
    review_ = Review("base", "head", [changed, *quiet])
    assert [row[0] for row in summary_rows(review_)] == ["dev"]
    text = markdown(review_)
    assert "11 environments unchanged: env0, env1," in text
    assert "| env3 |" not in text
    (summary, *_rest) = tables(review_)
    assert "11 environments unchanged" in str(summary.caption)
