"""Where output goes and how it looks: rich tables on a terminal; complete text when the output is
not a terminal (CI logs are read too: a table is as wide as its widest cell, never cut to 80
columns); Markdown or JSON to stdout or a file. Messages are text, never markup."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

WIDE = 100_000  # "as wide as it needs": a table off a terminal is laid out at its natural width


class Format(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


class _Stream(Console):
    """A console on stdout or stderr that, off a terminal, never cuts or wraps what it prints."""

    def __init__(self, *, stderr: bool = False) -> None:
        stream = sys.stderr if stderr else sys.stdout
        super().__init__(stderr=stderr, width=None if stream.isatty() else WIDE, soft_wrap=True, highlight=False)


out = _Stream()
err = _Stream(stderr=True)


def show(*renderables: Any) -> None:
    """Tables (or other rich renderables) to stdout."""
    for r in renderables:
        out.print(r)


def say(message: str, style: str | None = None, *, prefix: str = "", prefix_style: str | None = None) -> None:
    """One message on stderr: ``prefix`` (styled) then ``message``, both plain text."""
    line = Text()
    if prefix:
        line.append(prefix, style=prefix_style)
        line.append(" ")
    line.append(message, style=style)
    err.print(line)


def emit(text: str, output: Path | None = None) -> None:
    """``text`` to ``output`` (a file) or, without one, to stdout as it is."""
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text if text.endswith("\n") else text + "\n")
    else:
        print(text)
