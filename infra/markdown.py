"""Markdown for pull requests: GitHub's comment limit, table cells, paths as a reader sees them."""

from __future__ import annotations

from pathlib import Path

MARKDOWN_LIMIT = 65_536  # GitHub's comment limit


def md_cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def rel_path(path: Path | str) -> str:
    """A path relative to the working directory (the repository root in CI), else as given."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
