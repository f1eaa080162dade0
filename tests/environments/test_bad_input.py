"""Bad environment files, as a new user writes them: each exits 2 naming the file and the field,
writes nothing, and never crashes or hangs (an alias bomb, invalid UTF-8, a duplicated key, two
problems across files, a message with square brackets)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from infra.cli.app import main
from tests.conftest import ROOT, read_env, tree_digest, write_env


@pytest.fixture
def previous_out(tmp_path: Path) -> Path:
    out = tmp_path / "cdktf.out"
    (out / "stacks" / "dev").mkdir(parents=True)
    (out / "manifest.json").write_text('{"stacks": {}}')
    (out / "stacks" / "dev" / "cdk.tf.json").write_text('{"previous": true}')
    return out


def _synth(env_dir: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["synth", "--env-dir", str(env_dir), "--outdir", str(out)])
    return code, capsys.readouterr().err


def test_an_alias_bomb_is_refused_before_it_expands(env_dir: Path, previous_out: Path) -> None:
    # nine levels of ten aliases: x9 alone stands for 11,111,111,111 values, the file for 12,345,679,xxx ("billion laughs")
    lines = ['x0: &x0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 10)}]" for i in range(1, 10)]
    path = env_dir / "dev.yaml"
    path.write_text(path.read_text() + "\n".join(lines) + "\n")
    before = tree_digest(previous_out)
    script = f"import sys\nfrom infra.cli.app import main\nsys.exit(main(['synth', '--env-dir', {str(env_dir)!r}, '--outdir', {str(previous_out)!r}]))"
    # the timeout guards the suite against a hang; the speed itself is measured in benchmarks/bench_bad_input.py
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    assert "dev.yaml:1: (file): YAML aliases expand to 12,345,679," in result.stderr and "(more than 20,000)" in result.stderr
    assert tree_digest(previous_out) == before


def test_invalid_utf8_names_the_file_and_line(env_dir: Path, previous_out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = env_dir / "staging.yaml"
    raw = path.read_bytes()
    third = raw.index(b"\n", raw.index(b"\n") + 1) + 1
    path.write_bytes(raw[:third] + b"# caf\xe9 (latin-1)\n" + raw[third:])
    before = tree_digest(previous_out)
    code, err = _synth(env_dir, previous_out, capsys)
    assert code == 2
    assert "staging.yaml:3: (file): not valid UTF-8" in err
    assert "Traceback" not in err
    assert tree_digest(previous_out) == before


def test_a_duplicated_key_is_not_silently_taken(env_dir: Path, previous_out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = env_dir / "dev.yaml"
    lines = path.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("branch:"))
    lines.insert(at + 1, "branch: main")
    path.write_text("\n".join(lines) + "\n")
    before = tree_digest(previous_out)
    code, err = _synth(env_dir, previous_out, capsys)
    assert code == 2
    assert f"dev.yaml:{at + 2}: branch: given twice (first on line {at + 1})" in err
    assert tree_digest(previous_out) == before


def test_two_problems_across_files_are_both_reported(env_dir: Path, previous_out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # staging takes production's branch: staging fails on its own (main needs an approval) AND the
    # branch is taken; both are reported, in both files, whichever file the user changed
    data = read_env(env_dir, "staging")
    data["branch"] = "main"
    write_env(env_dir, "staging", data)
    before = tree_digest(previous_out)
    code, err = _synth(env_dir, previous_out, capsys)
    assert code == 2
    assert tree_digest(previous_out) == before
    assert "staging.yaml" in err and ": requires_approval: " in err
    assert "staging.yaml:" in err and "branch: 'main' is also followed by" in err and "production.yaml" in err
    assert sum(1 for line in err.splitlines() if ": branch: 'main' is also followed by" in line) == 2


def test_square_brackets_in_a_message_reach_the_reader(env_dir: Path, previous_out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = read_env(env_dir, "dev")
    data["project"] = "ML-Platform"
    write_env(env_dir, "dev", data)
    before = tree_digest(previous_out)
    code, err = _synth(env_dir, previous_out, capsys)
    assert code == 2
    assert tree_digest(previous_out) == before
    assert ": project: " in err
    assert "^[a-z][a-z0-9]{1,11}$" in err  # a rich markup parser would print "^{1,11}$"


def test_main_py_maps_the_same_errors_without_loading_the_cli(env_dir: Path) -> None:
    """The cdktf app (python main.py) exits 2 on a bad file, and never imports typer or rich."""
    data = read_env(env_dir, "dev")
    data["aws"]["network"]["zones"] = ["us-east-1a"]
    write_env(env_dir, "dev", data)
    script = (
        "import sys\nfrom pathlib import Path\nimport main\n"
        f"code = main.guarded(lambda: main.synth(Path({str(env_dir)!r})))\n"
        "print(code, 'typer' in sys.modules, 'rich' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.stdout.split() == ["2", "False", "False"], result.stderr
    assert "aws.network.zones" in result.stderr
