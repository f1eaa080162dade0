"""``infra deploy``: apply what was reviewed, through the bundled engine, on the provider-free
example stack (examples/engine): saved plan, stale saved plan, changed code, changed change set."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from infra import engine
from infra.cli.app import main
from infra.deploy.gate import NeedsApproval, Reviewed, change_set, deploy, unreviewed
from tests.servers import engine_example


def _review(out: Path, path: Path, saved: Path | None = None) -> Path:
    """What the review workflow records: the plan's report (real plan) and, optionally, its saved plan."""
    assert main(["plan", "staging", "--outdir", str(out), "--format", "json", "-o", str(path)]) in (0, 1)
    if saved is not None:
        saved.mkdir(exist_ok=True)
        shutil.copy(out / "stacks" / "staging" / "plan.tfplan", saved / "staging.tfplan")
    return path


def _state(out: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((out / "stacks" / "staging" / "terraform.tfstate").read_text())


def test_deploy_applies_only_what_was_reviewed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    example = engine_example()
    out = tmp_path / "cdktf.out"
    monkeypatch.setenv("MODEL_VERSION", "v1")
    example.build(str(out)).synth()

    # v1 reviewed with a saved plan: the saved plan is applied as is
    review1 = _review(out, tmp_path / "review1.json", tmp_path / "saved1")
    result = deploy(out, "staging", Reviewed.load(review1, "staging"), saved_plans=tmp_path / "saved1")
    assert [(s.how, s.applied) for s in result.stacks] == [
        ("saved plan", ["create terraform_data.endpoint", "create terraform_data.model"])
    ]
    assert _state(out)["outputs"]["model_output"]["value"] == "model-v1"

    # the code changed after the review: the synth hash differs, nothing is applied
    monkeypatch.setenv("MODEL_VERSION", "v2")
    example.build(str(out)).synth()
    serial = _state(out)["serial"]
    with pytest.raises(NeedsApproval, match="not the code that was reviewed"):
        deploy(out, "staging", Reviewed.load(review1, "staging"))
    assert _state(out)["serial"] == serial

    # v2 reviewed, but the review showed only the model's update: the endpoint's replacement stops it
    review2 = _review(out, tmp_path / "review2.json", tmp_path / "saved2")
    data = json.loads(review2.read_text())
    data["environments"][0]["changes"] = [c for c in data["environments"][0]["changes"] if c["address"] != "terraform_data.endpoint"]
    narrowed = tmp_path / "narrowed.json"
    narrowed.write_text(json.dumps(data))
    with pytest.raises(NeedsApproval, match=r"terraform_data.endpoint replace \(not in the review\)"):
        deploy(out, "staging", Reviewed.load(narrowed, "staging"))
    assert _state(out)["serial"] == serial

    # the state moved after the review (someone applied first): the saved plan is stale, the deploy
    # plans again, finds the reviewed changes already there, and applies nothing new
    code, _, err = engine.run("apply", ["-input=false", "-no-color", "-auto-approve"], cwd=out / "stacks" / "staging")
    assert code == 0, err
    result = deploy(out, "staging", Reviewed.load(review2, "staging"), saved_plans=tmp_path / "saved2")
    stack = result.stacks[0]
    assert stack.how == "no changes" and any("stale" in n for n in stack.notes), stack
    assert any("already applied" in n for n in stack.notes)

    # v3 reviewed without a saved plan: planned again, compared, applied; the CLI records it
    monkeypatch.setenv("MODEL_VERSION", "v3")
    example.build(str(out)).synth()
    review3 = _review(out, tmp_path / "review3.json")
    record = tmp_path / "applied.json"
    assert main(["deploy", "staging", "--outdir", str(out), "--reviewed", str(review3), "--record", str(record)]) == 0
    applied = json.loads(record.read_text())["stacks"][0]
    assert applied["how"] == "new plan" and applied["applied"] == ["replace terraform_data.endpoint", "update terraform_data.model"]
    assert _state(out)["outputs"]["model_output"]["value"] == "model-v3"
    assert main(["deploy", "staging", "--outdir", str(out), "--reviewed", str(review1)]) == 3


def test_change_sets_ignore_volatile_updates_and_order() -> None:
    reviewed = change_set(
        [
            {"stack": "s", "address": "aws_eks_node_group.a", "type": "aws_eks_node_group", "action": "replace", "attrs": []},
            {"stack": "s", "address": "aws_s3_bucket.b", "type": "aws_s3_bucket", "action": "update", "attrs": [{"path": "tags.team"}]},
        ]
    )
    planned = change_set(
        [
            {"stack": "s", "address": "aws_eks_node_group.a", "type": "aws_eks_node_group", "action": "update",
             "attrs": [{"path": "instance_types[0]"}]},
            {"stack": "s", "address": "aws_eks_node_group.c", "type": "aws_eks_node_group", "action": "update",
             "attrs": [{"path": "scaling_config.desired_size"}]},  # the autoscaler moved it: volatile
            {"stack": "s", "address": "aws_s3_bucket.b", "type": "aws_s3_bucket", "action": "update", "attrs": [{"path": "tags_all.team"}]},
        ]
    )  # fmt: skip
    assert ("s", "aws_eks_node_group.c") not in planned and ("s", "aws_s3_bucket.b") not in planned
    assert unreviewed(reviewed, planned) == []  # a likely replacement that turned out an update is covered
    assert unreviewed({("s", "x.y"): "update"}, {("s", "x.y"): "replace"}) == ["s: x.y replace (reviewed as update)"]
