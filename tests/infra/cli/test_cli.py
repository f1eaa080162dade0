"""``infra`` commands called through ``main(argv)``: exit codes and what they print."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from environments.schema import Environment
from infra.cli.app import main


def test_summary_json_matches_the_environment_files(
    synth_out: Path, environments: dict[str, Environment], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["summary", "--outdir", str(synth_out), "--format", "json"]) == 0
    summaries = {s["stack"]: s for s in json.loads(capsys.readouterr().out)}
    for name, env in environments.items():
        assert env.aws and env.aws.cluster and env.gcp and env.gcp.cluster
        aws_gpus = sum(g.gpu.count * g.max for g in env.aws.cluster.gpu_node_groups)
        gcp_gpus = sum(p.accelerator.count * p.max * (len(p.zones) or 1) for p in env.gcp.cluster.gpu_node_pools)
        assert sum(summaries[name]["gpus_by_type"].values()) == aws_gpus + gcp_gpus
        assert [e["name"] for e in summaries[name]["endpoints"]] == [env.resource_name(e.name) for e in env.aws.endpoints]
        assert {c["cloud"] for c in summaries[name]["clusters"]} == {"aws", "gcp"}
        assert summaries[name]["total"] == sum(summaries[name]["resources"].values())
        assert env.serving
        workloads = summaries[f"{name}-workloads"]["workloads"]
        assert [w["release"] for w in workloads] == ["model-server-eks", "model-server-gke"]
        for w in workloads:
            assert (w["min_replicas"], w["max_replicas"]) == (env.serving.replicas.min, env.serving.replicas.max)
            assert w["gpus"] == (1 if env.serving.gpu_pool else 0)
            assert w["image"].endswith(f":{env.serving.image_tag}")


def test_summary_markdown_and_table(synth_out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "production", "--outdir", str(synth_out), "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert "### production" in markdown and "| mlp-production-predict |" in markdown
    assert main(["summary", "dev", "--outdir", str(synth_out)]) == 0
    assert "mlp-dev-eks" in capsys.readouterr().out


def test_summary_without_synth_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "--outdir", str(tmp_path / "nothing")]) == 2
    assert "make synth" in capsys.readouterr().err


def test_validate_lists_environments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate"]) == 0
    assert "production" in capsys.readouterr().out


def test_unknown_option_is_a_usage_error() -> None:
    assert main(["synth", "--no-such-flag"]) == 2


def test_check_terraform(synth_out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-terraform", "--outdir", str(synth_out)]) == 0
    from infra.synthesized.reader import list_stacks

    assert capsys.readouterr().out.count("ok ") == len(list_stacks(synth_out)) == 9


def test_output_off_a_terminal_is_complete(synth_out: Path) -> None:
    """In CI logs (stdout is a pipe) a table keeps every character of its cells: no cut at 80 columns."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    script = f"import sys\nfrom infra.cli.app import main\nsys.exit(main(['cost', 'staging', '--outdir', {str(synth_out)!r}]))"
    env = {"COLUMNS": "80", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert "staging/aws-monitoring/throttles-predict" in result.stdout  # 40 characters: cut at 80 columns
    assert max(len(line) for line in result.stdout.splitlines()) > 120  # laid out at its natural width, not 80
