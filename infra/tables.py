"""Tables for people (rich): every cell and title is text, never markup, so a value with square
brackets (a regular expression, ``subnet_ids[0]``, ``[a-z]``) reaches the reader whole. Styles
are given as :func:`styled` cells, not as ``[bold]…[/bold]`` in a string."""

from __future__ import annotations

from typing import Any

from rich.table import Column
from rich.table import Table as RichTable
from rich.text import Text


def _text(value: Any) -> Any:
    return Text(value) if isinstance(value, str) else value


def styled(text: str, style: str) -> Text:
    return Text(text, style=style)


class Table(RichTable):
    """A rich table whose string cells, title and caption are plain text."""

    def __init__(self, *headers: Any, title: str | Text | None = None, caption: str | Text | None = None, **kwargs: Any) -> None:
        columns = [Column(header=Text(h)) if isinstance(h, str) else h for h in headers]
        super().__init__(*columns, title=_text(title), caption=_text(caption), **kwargs)

    def add_row(self, *renderables: Any, **kwargs: Any) -> None:
        super().add_row(*(_text(r) for r in renderables), **kwargs)

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, _text(value) if name in ("caption", "title") else value)
