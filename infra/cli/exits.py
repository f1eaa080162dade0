"""The one map from errors to exit codes: 0 ok, 1 findings, 2 usage or input error, 3 ``infra
deploy``: what would be applied is not what was reviewed.

An error is printed as text, never as markup (a schema pattern such as ``^[a-z][a-z0-9]{1,11}$``
reaches the reader whole). This module imports neither typer nor rich, so ``main.py`` (the cdktf
app) maps its errors the same way without loading the CLI.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from environments.loader import EnvironmentFileError, UnknownEnvironment
from infra.errors import EXIT_FINDINGS, EXIT_NEEDS_APPROVAL, EXIT_OK, EXIT_USAGE, InfraError

__all__ = ["EXIT_FINDINGS", "EXIT_NEEDS_APPROVAL", "EXIT_OK", "EXIT_USAGE", "guarded", "print_error"]


def _red(text: str) -> str:
    if sys.stderr.isatty() and not os.environ.get("NO_COLOR"):
        return f"\033[31m{text}\033[0m"
    return text


def print_error(headline: str, detail: str = "", *, below: bool = False) -> None:
    """``headline`` (in red on a terminal), then ``detail`` beside it or ``below`` it, as plain text on stderr."""
    sys.stderr.write(_red(headline) + ("\n" if below else " ") + detail + "\n")
    sys.stderr.flush()


def exit_code(exc: BaseException) -> int | None:
    """The exit code of one of our errors; ``None`` for anything else (a bug: let it raise)."""
    if isinstance(exc, (EnvironmentFileError, UnknownEnvironment)):
        return EXIT_USAGE
    if isinstance(exc, InfraError):
        return exc.exit_code
    return None


def guarded(run: Callable[[], int | None]) -> int:
    """Run ``run`` and turn our errors into their exit codes, printed once."""
    try:
        return run() or EXIT_OK
    except EnvironmentFileError as exc:
        print_error("invalid environment file; nothing was written", str(exc), below=True)
        return EXIT_USAGE
    except UnknownEnvironment as exc:
        print_error("error:", str(exc.args[0]))
        return EXIT_USAGE
    except InfraError as exc:
        print_error("error:", str(exc))
        return exc.exit_code
