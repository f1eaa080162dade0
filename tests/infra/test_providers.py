"""Provider locks: `infra providers lock` writes each stack's lock from a (filesystem-mirror)
registry, the plan and deploy inits copy it in and run read-only, and a missing, stale or tampered
lock is refused. The bundled engine runs for real; the provider is a package in a local mirror."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from infra import providers
from infra.cli.app import main
from infra.engine import EngineError, run_checked
from infra.synthesized.reader import load_stack

SOURCE = "example.com/acme/fake"


def _mirror(root: Path, version: str = "1.0.0") -> Path:
    """A packed filesystem mirror holding one provider package for linux_amd64."""
    folder = root / "mirror" / SOURCE
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / f"terraform-provider-fake_{version}_linux_amd64.zip", "w") as z:
        z.writestr(f"terraform-provider-fake_v{version}", "#!/bin/sh\nexit 1\n")
    return root / "mirror"


def _outdir(root: Path, version: str = "1.0.0") -> Path:
    out = root / "cdktf.out"
    stack = out / "stacks" / "fake"
    stack.mkdir(parents=True, exist_ok=True)
    config = {"terraform": {"required_providers": {"fake": {"source": SOURCE, "version": version}}}}
    (stack / "cdk.tf.json").write_text(json.dumps(config))
    (out / "manifest.json").write_text(json.dumps({"stacks": {"fake": {"synthesizedStackPath": "stacks/fake/cdk.tf.json"}}}))
    return out


def _rc(root: Path, mirror: Path) -> Path:
    rc = root / "terraformrc"
    rc.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{mirror}"\n    include = ["example.com/*/*"]\n  }}\n}}\n')
    return rc


def test_source_addresses_and_lock_file_entries() -> None:
    assert providers.source_address("aws") == "registry.terraform.io/hashicorp/aws"
    assert providers.source_address("hashicorp/helm") == "registry.terraform.io/hashicorp/helm"
    assert providers.source_address("Example.com/Acme/Fake") == SOURCE
    text = 'provider "registry.terraform.io/hashicorp/aws" {\n  version     = "6.25.0"\n  constraints = "6.25.0"\n  hashes = []\n}\n'
    assert providers.locked(text) == {"registry.terraform.io/hashicorp/aws": "6.25.0"}


def test_lock_then_a_read_only_init_installs_only_the_locked_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror, out, locks = _mirror(tmp_path), _outdir(tmp_path), tmp_path / "locks"
    assert (
        main(["providers", "lock", "--outdir", str(out), "--lock-dir", str(locks), "--fs-mirror", str(mirror), "--platform", "linux_amd64"])
        == 0
    )
    written = locks / "fake.terraform.lock.hcl"
    assert providers.locked(written.read_text()) == {SOURCE: "1.0.0"} and "h1:" in written.read_text()
    assert main(["providers", "check", "--outdir", str(out), "--lock-dir", str(locks)]) == 0

    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(_rc(tmp_path, mirror)))
    stack = load_stack(out / "stacks" / "fake" / "cdk.tf.json")
    args = providers.prepare(stack, locks, require=True)
    assert args == ["-lockfile=readonly"]
    assert (stack.path.parent / ".terraform.lock.hcl").read_text() == written.read_text()
    run_checked("init", ["-input=false", "-no-color", "-backend=false", *args], stack.path.parent)

    # a package that is not the one locked (a substituted provider) is refused by the same init
    shutil.rmtree(stack.path.parent / ".terraform")
    (mirror / SOURCE / "terraform-provider-fake_1.0.0_linux_amd64.zip").unlink()
    with zipfile.ZipFile(mirror / SOURCE / "terraform-provider-fake_1.0.0_linux_amd64.zip", "w") as z:
        z.writestr("terraform-provider-fake_v1.0.0", "#!/bin/sh\necho substituted\n")
    with pytest.raises(EngineError, match="doesn't match any of the checksums"):
        run_checked(
            "init", ["-input=false", "-no-color", "-backend=false", *providers.prepare(stack, locks, require=True)], stack.path.parent
        )


def test_a_missing_or_stale_lock_is_refused_in_ci_and_left_to_init_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out, locks = _outdir(tmp_path, "2.0.0"), tmp_path / "locks"
    stack = load_stack(out / "stacks" / "fake" / "cdk.tf.json")
    assert "no committed provider lock" in str(providers.check(stack, locks)[0])
    monkeypatch.setenv("CI", "true")
    with pytest.raises(providers.LockError, match="run `infra providers lock`"):
        providers.prepare(stack, locks)
    assert main(["providers", "check", "--outdir", str(out), "--lock-dir", str(locks)]) == 2
    locks.mkdir()
    (locks / "fake.terraform.lock.hcl").write_text(f'provider "{SOURCE}" {{\n  version = "1.0.0"\n  hashes = []\n}}\n')
    with pytest.raises(providers.LockError, match=r"locks example\.com/acme/fake 1\.0\.0, the stack pins 2\.0\.0"):
        providers.prepare(stack, locks)
    monkeypatch.setenv("CI", "false")
    assert providers.prepare(stack, locks) == []  # outside CI a developer's init may write its own


def test_every_synthesized_stack_pins_exact_provider_versions(synth_out: Path) -> None:
    """A lock entry matches a version, so the stacks must pin one (cdktf's prebuilt bindings do)."""
    from infra.synthesized.reader import load_stacks

    for stack in load_stacks(synth_out):
        for source, version in providers.required(stack).items():
            assert source.startswith("registry.terraform.io/hashicorp/") and version.count(".") == 2, (stack.name, source, version)
