"""Writing an environment file back: a YAML round trip that keeps comments and key order, then
every file of the folder validated again, and the original restored when that fails. What
``infra promote`` (image digests) and ``infra model pin`` (a model version) change goes through here."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from environments.loader import load_environments


def _yaml() -> Any:
    from ruamel.yaml import YAML

    y = YAML()
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def edit_env_file(path: Path, change: Callable[[Any], bool], *, write: bool = True) -> bool:
    """Apply ``change`` to the YAML document of an environment file (a round trip that keeps comments
    and key order); write it when ``change`` says it changed something, then validate every file of
    the folder and put the original back if that fails. Returns whether it wrote (never with ``write=False``)."""
    original = path.read_text()
    y = _yaml()
    doc = y.load(original)
    if not change(doc) or not write:
        return False
    buffer = io.StringIO()
    y.dump(doc, buffer)
    path.write_text(buffer.getvalue())
    try:
        load_environments(path.parent)
    except Exception:
        path.write_text(original)
        raise
    return True
