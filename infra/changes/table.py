"""The replacement table (``replacements.yaml``): which attribute changes force a resource to be
destroyed and re-created, and which resources hold state, per resource type, each with its source."""

from __future__ import annotations

import datetime as dt
import functools
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from infra.errors import InfraError

TABLE_FILE = Path(__file__).with_name("replacements.yaml")
_INDEX = re.compile(r"\[\d+\]")


class TableError(InfraError):
    """The replacement table is malformed (names the file and the entry)."""


class TypeRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    forces: list[str]
    when: dict[str, str] = {}
    stateful: Literal["always", "with_capacity", "never"] = "never"
    # a replacement destroys the resource before it creates the new one when this attribute is set
    # (a fixed, unique name): the resource is gone meanwhile
    destroys_first_when_set: str = ""
    doc: str = Field(pattern=r"^https://")
    code: str = ""
    confirmed: bool = True

    @property
    def citation(self) -> str:
        where = f"{self.doc}" + (f" ({self.code})" if self.code else "")
        return where + ("" if self.confirmed else " [unconfirmed]")

    def forcing(self, path: str) -> str:
        """``"yes"`` when a change at ``path`` forces replacement, ``"if …"`` when it may, else ``""``."""
        bare = _INDEX.sub("", path.split("{}", 1)[0])
        if any(bare == f or bare.startswith(f + ".") for f in self.forces):
            return "yes"
        for f, condition in self.when.items():
            if bare == f or bare.startswith(f + "."):
                return f"if {condition}"
        return ""


class Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    read: dt.date
    providers: dict[str, str]
    types: dict[str, TypeRule]

    def rule(self, rtype: str) -> TypeRule | None:
        return self.types.get(rtype)


@functools.cache
def load_table(path: Path = TABLE_FILE) -> Table:
    try:
        return Table.model_validate(yaml.safe_load(path.read_text()))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise TableError(f"{path}: {where}: {first['msg']}") from None
