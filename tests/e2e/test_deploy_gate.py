"""``infra deploy plan`` / ``infra deploy apply``: apply what was reviewed, through the bundled
engine, on the provider-free example (examples/engine: ``staging`` and ``staging-workloads``, which
reads staging's output). The review is the real plan of the pull request (``infra plan``); the
post-merge plan must match it value by value, and the apply must match the approved plan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra import engine
from infra.cli.app import main
from infra.deploy.gate import Expected, NeedsApproval, Record, Reviewed, apply_deploy, differences, plan_deploy
from tests.servers import engine_example

pytestmark = pytest.mark.slow
ENV = "staging"


def _review(out: Path, path: Path) -> Reviewed:
    """What review.yml records: the real plan of the stacks that can be planned (exit 1: changes)."""
    assert main(["plan", ENV, "--outdir", str(out), "--format", "json", "-o", str(path)]) in (0, 1)
    return Reviewed.load(path, ENV)


def _serving(out: Path) -> object:
    managed = [r for r in _state(out, "staging-workloads")["resources"] if r["mode"] == "managed"]
    return managed[0]["instances"][0]["attributes"]["input"]["value"] if managed else None


def _state(out: Path, stack: str = ENV) -> dict:  # type: ignore[type-arg]
    path = out / "stacks" / stack / "terraform.tfstate"
    return json.loads(path.read_text()) if path.exists() else {"serial": 0, "outputs": {}, "resources": []}


def _plan(out: Path, reviewed: Reviewed, **kw: object) -> Record:
    return plan_deploy(out, ENV, reviewed, commit="b" * 40, review={"file": reviewed.source}, **kw)  # type: ignore[arg-type]


def _edit(path: Path, edit) -> Reviewed:  # type: ignore[no-untyped-def]
    data = json.loads(path.read_text())
    edit(data["environments"][0]["changes"])
    path.write_text(json.dumps(data))
    return Reviewed.load(path, ENV)


def test_apply_only_what_was_reviewed_and_approved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    example = engine_example()
    out = tmp_path / "cdktf.out"
    monkeypatch.setenv("MODEL_VERSION", "v1")
    example.build(str(out)).synth()

    # first deploy: the review planned staging; staging-workloads waits for staging's output
    review1 = _review(out, tmp_path / "review1.json")
    assert review1.planned_stacks == {ENV}
    record = _plan(out, review1)
    assert [(s.stack, s.status) for s in record.stacks] == [(ENV, "planned"), ("staging-workloads", "pending")]
    assert [c["address"] for c in record.stacks[0].changes] == ["terraform_data.endpoint", "terraform_data.model"]
    assert not any(p.name.endswith(".tfplan") for p in out.rglob("*.tfplan") if p.name == "deploy.tfplan")  # no plan file left
    applied = apply_deploy(out, ENV, record, only=[ENV])
    assert applied.stacks[0].applied == ["create terraform_data.endpoint", "create terraform_data.model"]
    assert _state(out)["outputs"]["model_output"]["value"] == "model-v1"
    # the workloads stack's create was in no review (it could not be planned, no offline review here)
    with pytest.raises(NeedsApproval, match=r"terraform_data.serving create \(not in the review \(offline\)\)"):
        apply_deploy(out, ENV, record, only=["staging-workloads"])
    assert _serving(out) is None
    # reviewed again now that staging is applied: planned for real, applied
    record = _plan(out, _review(out, tmp_path / "review1b.json"))
    assert [(s.stack, s.status, len(s.changes)) for s in record.stacks] == [(ENV, "planned", 0), ("staging-workloads", "planned", 1)]
    apply_deploy(out, ENV, record)
    assert _serving(out) == "model-v1"

    # the code changed after the review: the synth hash differs; nothing planned or applied
    monkeypatch.setenv("MODEL_VERSION", "v2")
    example.build(str(out)).synth()
    serial = _state(out)["serial"]
    with pytest.raises(NeedsApproval, match="not the code that was reviewed"):
        _plan(out, review1)

    # the review showed another value than the post-merge plan: refused, value by value
    review2 = tmp_path / "review2.json"
    _review(out, review2)
    forged = _edit(
        tmp_path / "review2.json",
        lambda cs: [
            a.update(after="model-v9")
            for c in cs
            for a in c["attributes"]
            if a["path"] == "input" and c["address"] == "terraform_data.model"
        ],
    )
    with pytest.raises(NeedsApproval, match=r"terraform_data.model: input = 'model-v2' \(the review \(real plan\) shows 'model-v9'\)"):
        _plan(out, forged)
    # ... or left out a change (the endpoint's replacement)
    _review(out, review2)
    narrowed = _edit(review2, lambda cs: cs.remove(next(c for c in cs if c["address"] == "terraform_data.endpoint")))
    with pytest.raises(NeedsApproval, match=r"terraform_data.endpoint replace \(not in the review \(real plan\)\)"):
        _plan(out, narrowed)
    assert _state(out)["serial"] == serial

    # the approved deploy plan was altered between the plan job and the apply job: refused
    record2 = _plan(out, _review(out, review2))
    tampered = tmp_path / "tampered.json"
    data = record2.to_dict()
    data["stacks"][0]["changes"] = [c for c in data["stacks"][0]["changes"] if c["address"] != "terraform_data.endpoint"]
    tampered.write_text(json.dumps(data))
    with pytest.raises(NeedsApproval, match=r"terraform_data.endpoint replace \(not in the approved deploy plan\)"):
        apply_deploy(out, ENV, Record.load(tampered))
    assert _state(out)["serial"] == serial

    # the CLI: plan against the review file, apply the record; the workloads stack follows
    # staging's new output (an update the offline review cannot show): noted, applied
    planned, applied_file = tmp_path / "planned.json", tmp_path / "applied.json"
    assert main(["deploy", "plan", ENV, "--outdir", str(out), "--review", str(review2), "--record", str(planned)]) == 0
    assert main(["deploy", "apply", ENV, "--outdir", str(out), "--planned", str(planned), "--record", str(applied_file)]) == 0
    stacks = json.loads(applied_file.read_text())["stacks"]
    assert stacks[0]["applied"] == ["replace terraform_data.endpoint", "update terraform_data.model"]
    assert stacks[1]["applied"] == ["update terraform_data.serving"] and "upstream" in stacks[1]["notes"][0]
    assert _state(out)["outputs"]["model_output"]["value"] == "model-v2" and _serving(out) == "model-v2"
    # an old review is refused with exit 3; an apply for another environment with exit 2
    assert main(["deploy", "plan", ENV, "--outdir", str(out), "--review", str(tmp_path / "review1.json"), "--record", str(planned)]) == 3
    assert main(["deploy", "apply", "dev", "--outdir", str(out), "--planned", str(planned)]) == 2

    # the state moved after the approval (someone applied v3 first): the apply plans again and
    # refuses what the approved plan did not show
    monkeypatch.setenv("MODEL_VERSION", "v3")
    example.build(str(out)).synth()
    record3 = _plan(out, _review(out, tmp_path / "review3.json"))
    code, _, err = engine.run("apply", ["-input=false", "-no-color", "-auto-approve", "-var-file=/dev/null"], cwd=out / "stacks" / ENV)
    assert code == 0, err
    result = apply_deploy(out, ENV, record3, only=[ENV])
    assert result.stacks[0].applied == [] and any("already applied" in n for n in result.stacks[0].notes)


def test_differences_compare_values_and_ignore_volatile_updates() -> None:
    def change(address: str, action: str, **attrs: object) -> dict:  # type: ignore[type-arg]
        rtype = address.split(".")[0]
        return {"stack": "s", "address": address, "type": rtype, "action": action,
                "attributes": [{"path": p, "before": None, "after": v} for p, v in attrs.items()]}  # fmt: skip

    reviewed = [change("aws_eks_node_group.a", "replace", instance_types="g6"), change("aws_s3_bucket.b", "update", **{"tags.team": "x"})]
    planned = [
        change("aws_eks_node_group.a", "update", instance_types="g6"),  # a predicted replacement that turned out an update
        change("aws_eks_node_group.c", "update", **{"scaling_config.desired_size": 3}),  # the autoscaler: volatile
        change("aws_s3_bucket.b", "update", **{"tags.team": "x", "tags_all.team": "x"}),  # tags_all: volatile
    ]
    assert differences(Expected(reviewed, True, "review"), planned) == ([], [])
    assert differences(Expected(reviewed, True, "review"), [change("aws_s3_bucket.b", "update", **{"tags.team": "y"})])[0] == [
        "aws_s3_bucket.b: tags.team = 'y' (the review shows 'x')"
    ]
    # an offline review compares only what both sides show; a real plan compares both ways
    extra = [change("aws_s3_bucket.b", "update", **{"tags.team": "x", "policy": "{}"})]
    assert differences(Expected(reviewed, False, "review"), extra)[0] == []
    assert differences(Expected(reviewed, True, "review"), extra)[0] == ["aws_s3_bucket.b: policy = '{}' (the review shows '(absent)')"]
    assert differences(Expected(reviewed, True, "review"), [change("aws_s3_bucket.b", "replace")])[0] == [
        "aws_s3_bucket.b replace (the review shows update)"
    ]
    # a value the review saw as unknown is covered; a reviewed change not planned now is a note
    unknown = [change("aws_s3_bucket.b", "update", **{"tags.team": "(known after apply)"})]
    problems, notes = differences(Expected(unknown, True, "review"), [change("aws_s3_bucket.b", "update", **{"tags.team": "z"})])
    assert problems == [] and notes == []
    assert differences(Expected(reviewed, True, "review"), [])[1][0].startswith("aws_eks_node_group.a: in the review, not planned now")


def test_deploy_plan_takes_the_review_from_the_merged_pull_requests_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In CI (`infra deploy plan staging` with no --review): the review is the artifact of the
    review.yml run at the approved head of the pull request that made this push; another run's
    artifact of the same name, or one whose bytes do not match its digest, is not used."""
    from environments.loader import load_environments
    from tests.fakes.github import Artifact, Commit, GitHubState, PullRequest, Review, WorkflowRun, fake_github

    example = engine_example()
    out = tmp_path / "cdktf.out"
    monkeypatch.setenv("MODEL_VERSION", "v1")
    example.build(str(out)).synth()
    report = tmp_path / "review.json"
    _review(out, report)

    repo = load_environments()[ENV].ci.repository  # type: ignore[union-attr]
    head, merge, before = "a" * 40, "b" * 40, "c" * 40
    state = GitHubState(repository=repo)
    state.pulls[7] = PullRequest(number=7, head_sha=head, base_ref="staging", merged=True, merge_commit_sha=merge, user="bob")
    state.commit_pulls[merge] = [7]
    state.commits[before], state.commits[merge] = Commit(before, "t0"), Commit(merge, "t1", parents=[before])
    state.reviews[7] = [Review(1, "alice", "APPROVED", head)]
    state.runs = [
        WorkflowRun(id=100, workflow="review.yml", event="pull_request", head_sha=head, head_branch="feature"),
        WorkflowRun(id=300, workflow="scratch.yml", event="push", head_sha="e" * 40, head_branch="scratch"),
    ]
    forged = {"environments": [{"env": ENV, "synth_hash": "0" * 64, "changes": []}]}
    state.artifacts = [
        Artifact(id=9, run_id=300, name="review-pr-7", files={"review.json": json.dumps(forged).encode()}),
        Artifact(id=5, run_id=100, name="review-pr-7", files={"review.json": report.read_bytes()}),
    ]
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"before": before, "after": merge}))
    record = tmp_path / "record.json"
    with fake_github(state) as url:
        for name, value in {
            "GITHUB_API_URL": url, "GITHUB_TOKEN": state.token, "GITHUB_REPOSITORY": repo, "GITHUB_SHA": merge,
            "GITHUB_REF_NAME": "staging", "GITHUB_EVENT_PATH": str(event),
        }.items():  # fmt: skip
            monkeypatch.setenv(name, str(value))
        args = ["deploy", "plan", ENV, "--outdir", str(out), "--record", str(record)]
        assert main(args) == 0
        evidence = json.loads(record.read_text())["review"]
        assert (evidence["pull_request"], evidence["run_id"], evidence["artifact_id"]) == (7, 100, 5)
        assert main([*args[:2], "dev", *args[3:]]) == 2  # dev deploys from develop, not from this push
        state.artifacts[1].recorded_digest = "sha256:" + "0" * 64  # the bytes served are not the ones uploaded
        assert main(args) == 3
