"""The policy gate over the repository's environments, with the real checkov (its own venv) and our
rules: the gate itself, declared and undeclared skips, and the report formats."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from environments.loader import ENV_DIR
from infra.cli.app import main
from infra.policy import checkov, report
from infra.policy import gate as policy
from infra.policy.gate import Finding, PolicyReport, StackResult
from tests.conftest import read_env, write_env


@pytest.fixture(scope="module")
def gate(synth_out: Path) -> PolicyReport:
    return policy.run(synth_out, ENV_DIR)


def test_every_environment_passes_checkov_and_our_rules(gate: PolicyReport) -> None:
    failures = [f"{f.check} {f.env}/{f.path}: {f.message}" for f in gate.failures]
    assert failures == []
    assert {s.env for s in gate.stacks} == {"dev", "staging", "production"}


def test_checkov_really_ran_on_every_stack(gate: PolicyReport, synth_out: Path) -> None:
    stacks = {p.name for p in (synth_out / "stacks").iterdir()}
    assert {s.stack for s in gate.stacks} == stacks
    for s in gate.stacks:
        assert s.checkov_passed > 0, s
        assert s.rules_passed > 0, s
    assert gate.checkov_version.startswith("3.")
    main_stacks = [s for s in gate.stacks if s.stack == s.env]
    assert all(s.checkov_passed > 150 for s in main_stacks)


def test_promoted_environments_have_no_skips_only_checks_that_cannot_apply(gate: PolicyReport) -> None:
    for f in gate.suppressed:
        if f.env in ("staging", "production"):
            assert f.status == "not_applicable", f
            assert "docs.aws.amazon.com" in f.reason  # each carries its source


def test_dev_skips_are_declared_and_listed_with_their_reasons(gate: PolicyReport) -> None:
    skipped = {(f.check, f.path) for f in gate.suppressed if f.env == "dev" and f.status == "skipped"}
    assert ("CKV_AWS_39", "aws-eks/cluster") in skipped
    assert ("CKV_AWS_258", "aws-lambda-predict/url") in skipped
    declared = {s.check: s.reason for s in gate.skips["dev"]}
    markdown = report.markdown(gate)
    sarif = report.sarif(gate)
    as_json = json.loads(report.to_json(gate))
    for check, reason in declared.items():
        assert check in markdown and reason in markdown
        assert any(s["check"] == check and s["reason"] == reason for s in as_json["declared_skips"]["dev"])
    suppressed = [r for r in sarif["runs"][0]["results"] if r.get("suppressions")]
    assert {r["ruleId"] for r in suppressed} >= set(declared)


def test_an_undeclared_exception_is_a_failure(synth_out: Path, env_dir: Path) -> None:
    data = read_env(env_dir, "dev")
    data["policy"]["skips"] = [s for s in data["policy"]["skips"] if s["check"] != "CKV_AWS_39"]
    write_env(env_dir, "dev", data)
    result = policy.run(synth_out, env_dir, ["dev"])
    assert [(f.check, f.path) for f in result.failures] == [("CKV_AWS_39", "aws-eks/cluster")]
    assert main(["policy", "dev", "--outdir", str(synth_out), "--env-dir", str(env_dir), "--format", "json"]) == 1


def test_a_skip_that_matches_nothing_fails(synth_out: Path, env_dir: Path) -> None:
    data = read_env(env_dir, "dev")
    data["policy"]["skips"].append({"check": "CKV_AWS_58", "reason": "EKS secrets are encrypted anyway, kept for the record"})
    write_env(env_dir, "dev", data)
    result = policy.run(synth_out, env_dir, ["dev"])
    assert [(f.check, f.source) for f in result.failures] == [("CKV_AWS_58", "policy")]
    assert "matches nothing" in result.failures[0].message


def test_checkov_configuration_outside_the_environment_files_cannot_skip(
    synth_out: Path, env_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """checkov reads ``.checkov.yaml`` from its working directory; ours is always empty."""
    (tmp_path / ".checkov.yaml").write_text("skip-check:\n  - CKV_AWS_39\n")
    monkeypatch.chdir(tmp_path)
    data = read_env(env_dir, "dev")
    data["policy"]["skips"] = [s for s in data["policy"]["skips"] if s["check"] != "CKV_AWS_39"]
    write_env(env_dir, "dev", data)
    result = policy.run(synth_out, env_dir, ["dev"])
    assert "CKV_AWS_39" in {f.check for f in result.failures}


def test_a_check_suppressed_inside_the_json_without_a_declaration_fails(synth_out: Path, environments: dict) -> None:  # type: ignore[type-arg]
    """checkov reports inline suppressions as skipped checks; one the environment file does not declare fails."""
    from infra.policy.rules import Context
    from infra.synthesized.reader import load_stack

    stack = load_stack(synth_out / "stacks" / "staging" / "cdk.tf.json")
    name = next(iter(stack.raw["resource"]["aws_eks_cluster"]))
    suppressed = checkov.parse_report(
        "staging",
        {
            "check_type": "terraform_json",
            "summary": {"passed": 10, "failed": 0, "skipped": 1, "checkov_version": "3.3.30"},
            "results": {
                "failed_checks": [],
                "skipped_checks": [
                    {"check_id": "CKV_AWS_37", "check_name": "logging", "resource": f"resource.{name}", "file_line_range": [5, 9]}
                ],
            },
        },
    )
    ctx = Context(env=environments["staging"], stacks=[stack], promoted=True, production=False)
    findings, _ = policy._environment(ctx, {"staging": suppressed}, [], Path("environments/staging.yaml"))
    failed = [f for f in findings if f.status == "failed"]
    assert [(f.check, f.path) for f in failed] == [("CKV_AWS_37", "aws-eks/cluster")]
    assert "not declared" in failed[0].message


def test_cli_formats_and_exit_codes(synth_out: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sarif_path = tmp_path / "policy.sarif"
    md_path = tmp_path / "policy.md"
    code = main(
        ["policy", "staging", "--outdir", str(synth_out), "--format", "markdown", "--output", str(md_path), "--sarif", str(sarif_path)]
    )
    assert code == 0
    assert md_path.read_text().startswith("### ✅ Policy: passed")
    sarif = json.loads(sarif_path.read_text())
    assert sarif["version"] == "2.1.0"
    rule_ids = {r["id"] for r in sarif["runs"][0]["tool"]["driver"]["rules"]}
    assert {f"MLP{i:03d}" for i in range(1, 12)} <= rule_ids
    for result in sarif["runs"][0]["results"]:
        assert result["suppressions"], "staging has no failures: every result is a suppressed one"
        assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("staging/cdk.tf.json")
    capsys.readouterr()
    assert main(["policy", "nosuch", "--outdir", str(synth_out)]) == 2
    assert "no environment named nosuch" in capsys.readouterr().err
    assert main(["policy", "--format", "yaml", "--outdir", str(synth_out)]) == 2


def test_policy_needs_a_synthesized_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "--outdir", str(tmp_path / "missing")]) == 2
    assert "make synth" in capsys.readouterr().err


def test_missing_checkov_is_a_usage_error_that_says_how_to_install(synth_out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECKOV_BIN", "/nonexistent/checkov")
    with pytest.raises(checkov.CheckovError, match="make install"):
        policy.run(synth_out, ENV_DIR, ["dev"])


def test_markdown_stays_under_the_comment_limit_and_says_what_it_left_out() -> None:
    failures = [
        Finding("dev", "dev", f"CKV_AWS_{i}", "checkov", "t", "-", f"aws_s3_bucket.b{i}", f"bucket-{i}", "x" * 200, "fix it " * 10)
        for i in range(2000)
    ]
    big = PolicyReport([StackResult("dev", "dev", "f", 1, 2000)], failures, {"dev": []}, "3.3.30", [])
    text = report.markdown(big)
    assert len(text) < report.MARKDOWN_LIMIT
    assert "more failures left out" in text
    assert text.startswith("### ❌ Policy: 2000 failures")


def test_not_applicable_entries_carry_a_reason_and_a_dated_source() -> None:
    entries = policy.not_applicable_entries()
    assert entries
    for e in entries:
        assert e.source.startswith("https://") and "(read 20" in e.source


def test_checkov_runs_from_its_own_environment_not_ours() -> None:
    assert checkov.checkov_bin() == checkov.DEFAULT_BIN
    assert importlib.util.find_spec("checkov") is None, "checkov must not be importable from the project's environment"
    assert checkov.version() == "3.3.30"
