"""Load and validate environment files; a bad file becomes one :class:`EnvironmentFileError`.

Each problem is printed as ``file:line: field.path: what is wrong; what would be right``. The loader
imports no cdktf or provider code, so a bad file fails in well under a second.
"""

from __future__ import annotations

import difflib
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from environments.schema import Environment, FieldError

ENV_DIR = Path(__file__).parent

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    file: Path
    path: Loc
    message: str
    line: int | None = None

    @property
    def field(self) -> str:
        return format_path(self.path)

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else f"{self.file}"
        return f"{where}: {self.field or '(file)'}: {self.message}"


class EnvironmentFileError(Exception):
    """One or more problems in environment files. Exit code 2 at the CLI edge."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def format_path(path: Loc) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


# --- YAML with line numbers -------------------------------------------------------------------


def _line_index(node: yaml.Node, path: Loc = ()) -> dict[Loc, int]:
    """Map every field path in a composed YAML document to its 1-based line."""
    lines: dict[Loc, int] = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = (*path, key.value)
            lines.update(_line_index(value, sub))
            lines[sub] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines.update(_line_index(item, (*path, i)))
    return lines


def _line_for(lines: dict[Loc, int], path: Loc) -> int | None:
    for n in range(len(path), -1, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return None


MAX_NODES = 20_000  # an environment file has a few hundred values; aliases may not expand beyond this


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise EnvironmentFileError(
            [Problem(path, (), f"not valid UTF-8 (byte {exc.start}: {raw[exc.start : exc.start + 1]!r}); save the file as UTF-8", line)]
        ) from None


def _expanded_size(node: yaml.Node, seen: dict[int, int]) -> int:
    """How many values ``node`` stands for once aliases are expanded (memoized: linear in the file)."""
    key = id(node)
    if key in seen:
        return seen[key]
    seen[key] = 1  # a recursive alias counts once (and cannot loop)
    if isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, seen) + _expanded_size(v, seen) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(item, seen) for item in node.value)
    else:
        size = 1
    seen[key] = size
    return size


def _duplicate_keys(node: yaml.Node, path: Loc = ()) -> list[tuple[Loc, int, int]]:
    """(field path, line, line of the first) for every key given twice in one mapping."""
    found: list[tuple[Loc, int, int]] = []
    if isinstance(node, yaml.MappingNode):
        first: dict[Any, int] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            if name is not None and name in first:
                found.append(((*path, name), key.start_mark.line + 1, first[name]))
            elif name is not None:
                first[name] = key.start_mark.line + 1
            found += _duplicate_keys(value, (*path, name if name is not None else "?"))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found += _duplicate_keys(item, (*path, i))
    return found


def _read_yaml(path: Path) -> tuple[Any, dict[Loc, int]]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise EnvironmentFileError([Problem(path, (), f"cannot read the file: {exc.strerror}")]) from None
    text = _decode(path, raw)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise EnvironmentFileError([Problem(path, (), f"YAML syntax error: {exc.problem}; fix the indentation or quoting", line)]) from None
    if node is None or not isinstance(node, yaml.MappingNode):
        raise EnvironmentFileError([Problem(path, (), "expected a mapping of environment settings (name: ..., branch: ...)", 1)])
    if (size := _expanded_size(node, {})) > MAX_NODES:
        raise EnvironmentFileError(
            [Problem(path, (), f"YAML aliases expand to {size:,} values (more than {MAX_NODES:,}): write the values out", 1)]
        )
    duplicates = _duplicate_keys(node)
    if duplicates:
        raise EnvironmentFileError(
            [
                Problem(path, loc, f"given twice (first on line {first}); the later value would silently win: keep one", line)
                for loc, line, first in duplicates
            ]
        )
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise EnvironmentFileError([Problem(path, (), "expected a mapping of environment settings (name: ..., branch: ...)", 1)])
    return data, _line_index(node)


# --- pydantic errors -> problems ----------------------------------------------------------------


def _model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class that holds the last element of ``loc``, following the schema."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)) or part not in current.model_fields:
            return None
        current = _inner_model(current.model_fields[part].annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if isinstance(found, type) and issubclass(found, BaseModel):
            return found
    return annotation


def _clean_loc(loc: tuple[Any, ...]) -> Loc:
    # pydantic adds validator tags like 'function-after[...]' for Annotated validators: drop them
    return tuple(p for p in loc if isinstance(p, int) or "[" not in str(p))


def _problems_from(err: ValidationError, path: Path, lines: dict[Loc, int]) -> list[Problem]:
    problems = []
    for e in err.errors():
        loc = _clean_loc(e["loc"])
        message = e["msg"]
        cause = (e.get("ctx") or {}).get("error")
        if isinstance(cause, FieldError):
            loc = (*loc, *cause.field)
            message = cause.message
        elif e["type"] == "extra_forbidden":
            owner = _model_at(Environment, loc)
            known = sorted(owner.model_fields) if owner else []
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
            message = f"unknown key; {hint}"
        elif e["type"] == "missing":
            message = "required field is missing"
        elif e["type"] == "value_error":
            message = message.removeprefix("Value error, ")
        else:
            message = f"{message} (got {e.get('input')!r})"
        problems.append(Problem(path, loc, message, _line_for(lines, loc)))
    return problems


# --- public API ---------------------------------------------------------------------------------


def load_environment(path: Path) -> Environment:
    return _validate(path, *_read_yaml(path))


def _validate(path: Path, data: Any, lines: dict[Loc, int]) -> Environment:
    try:
        env = Environment.model_validate(data)
    except ValidationError as err:
        raise EnvironmentFileError(_problems_from(err, path, lines)) from None
    if env.name != path.stem:
        raise EnvironmentFileError(
            [
                Problem(
                    path,
                    ("name",),
                    f"{env.name!r} does not match the file name; name it {path.stem!r} or rename the file",
                    lines.get(("name",)),
                )
            ]
        )
    return env


def environment_files(directory: Path = ENV_DIR) -> list[Path]:
    return sorted(p for p in directory.glob("*.yaml") if p.name != "facts.yaml")


class UnknownEnvironment(LookupError):
    """A command named an environment that no file defines (a usage error)."""


class Environments(dict[str, Environment]):
    """The environments of one folder, in promotion order (dev → staging → production), and the
    answers that follow from all of them together: who promotes into whom, which are protected,
    which file holds which. The one place these questions are answered."""

    def __init__(self, ordered: list[Environment], files: dict[str, Path]) -> None:
        super().__init__((e.name, e) for e in ordered)
        self.files = dict(files)

    def named(self, name: str) -> Environment:
        """The environment called ``name``; :class:`UnknownEnvironment` naming the known ones otherwise."""
        if name not in self:
            raise UnknownEnvironment(f"no environment named {name!r}; one of {', '.join(self)}")
        return self[name]

    def file_of(self, name: str) -> Path:
        return self.files[self.named(name).name]

    def source_of(self, name: str) -> Environment | None:
        """The environment that promotes into ``name`` (its last deploy is what a promotion carries)."""
        return next((e for e in self.values() if e.promotes_to == name), None)

    @property
    def promotion_targets(self) -> set[str]:
        """Environments something promotes into (staging, production)."""
        return {e.promotes_to for e in self.values() if e.promotes_to}

    @property
    def protected(self) -> set[str]:
        """Environments whose stateful resources a review protects: those something promotes into
        and those that wait for an approval."""
        return {n for n, e in self.items() if n in self.promotion_targets or e.requires_approval}

    def check_promotion(self, source: str, target: str) -> tuple[Environment, Environment]:
        """(source, target) when ``source`` promotes to ``target``; a usage error naming the path otherwise."""
        src, dst = self.named(source), self.named(target)
        if src.promotes_to != dst.name:
            chain = ", ".join(f"{e.name} → {e.promotes_to}" for e in self.values() if e.promotes_to)
            raise UnknownEnvironment(f"{source} does not promote to {target} (promotes_to: {src.promotes_to}); the path is {chain}")
        return src, dst


def loaded(environments: Environments | Path) -> Environments:
    """``environments`` when already loaded, else those of that folder. The tools take loaded
    environments so that a command reads its files once; a folder is accepted where the caller has
    nothing loaded (a test, a base checked out in a worktree)."""
    return environments if isinstance(environments, Environments) else load_environments(environments)


def load_environments(directory: Path = ENV_DIR) -> Environments:
    """Every environment in ``directory``, in promotion order (dev → staging → production)."""
    files = environment_files(directory)
    if not files:
        raise EnvironmentFileError([Problem(directory, (), "no environment files (*.yaml) found")])
    problems: list[Problem] = []
    raw: dict[Path, tuple[Any, dict[Loc, int]]] = {}
    envs: dict[Path, Environment] = {}
    for f in files:
        try:
            raw[f] = _read_yaml(f)
            envs[f] = _validate(f, *raw[f])
        except EnvironmentFileError as exc:
            problems += exc.problems
    # every problem at once, across files too: a file that fails on its own still takes part in the
    # checks it can (its branch), so the file the user changed is named whichever way the conflict runs
    problems += _branch_conflicts(raw)
    problems += _check_across(envs, {f.stem for f in files})
    if problems:
        raise EnvironmentFileError(sorted(dict.fromkeys(problems), key=lambda p: (str(p.file), p.line or 0)))
    return Environments(_promotion_order(envs), {e.name: f for f, e in envs.items()})


def _branch_conflicts(raw: dict[Path, tuple[Any, dict[Loc, int]]]) -> list[Problem]:
    """One environment per branch, checked on every readable file (valid or not), named in each."""
    by_branch: dict[str, list[Path]] = {}
    for f, (data, _) in raw.items():
        branch = data.get("branch")
        if isinstance(branch, str):
            by_branch.setdefault(branch, []).append(f)
    problems = []
    for branch, holders in by_branch.items():
        for f in holders if len(holders) > 1 else []:
            others = ", ".join(str(o) for o in holders if o != f)
            problems.append(
                Problem(f, ("branch",), f"{branch!r} is also followed by {others}; one environment per branch", raw[f][1].get(("branch",)))
            )
    return problems


def _check_across(envs: dict[Path, Environment], names: set[str]) -> list[Problem]:
    """The checks that need more than one (valid) file; ``names``: every environment file's name,
    valid or not (a promotion into a file that fails on its own is not a second problem)."""
    problems: list[Problem] = []
    by_name = dict.fromkeys(names)
    seen_project: tuple[str, Path] | None = None
    claimed: list[tuple[Path, Loc, str]] = []
    for f, env in envs.items():
        if seen_project and env.project != seen_project[0]:
            problems.append(
                Problem(
                    f,
                    ("project",),
                    f"{env.project!r} differs from {seen_project[0]!r} in {seen_project[1]}; one project for all environments",
                )
            )
        seen_project = seen_project or (env.project, f)
        if env.promotes_to is not None and env.promotes_to not in by_name:
            problems.append(Problem(f, ("promotes_to",), f"no environment named {env.promotes_to!r}; one of {sorted(by_name)}"))
        if env.promotes_to == env.name:
            problems.append(Problem(f, ("promotes_to",), "an environment cannot promote to itself"))
        sources = sorted(e.name for e in envs.values() if e.promotes_to == env.name and e is not env)
        if sources and env.policy.skips:
            problems.append(
                Problem(
                    f,
                    ("policy", "skips"),
                    f"{env.name} receives promotions from {', '.join(sources)}: what is promoted must pass the policy gate "
                    "without exceptions; fix the finding in the stacks instead of skipping it",
                )
            )
        for path, cidr in env.cidrs():
            for other_f, other_path, other in claimed:
                if other_f != f and ipaddress.IPv4Network(cidr).overlaps(ipaddress.IPv4Network(other)):
                    problems.append(
                        Problem(
                            f,
                            path,
                            f"{cidr} overlaps {other_f}: {format_path(other_path)} ({other}); environments need disjoint ranges to be peered",
                        )
                    )
        claimed += [(f, p, c) for p, c in env.cidrs()]
    return problems


def _promotion_order(envs: dict[Path, Environment]) -> list[Environment]:
    by_name = {e.name: e for e in envs.values()}
    targets = {e.promotes_to for e in envs.values() if e.promotes_to}
    ordered: list[Environment] = []
    for start in sorted(n for n in by_name if n not in targets):
        current: Environment | None = by_name[start]
        while current is not None and current not in ordered:
            ordered.append(current)
            current = by_name.get(current.promotes_to) if current.promotes_to else None
    missing = [e for e in envs.values() if e not in ordered]
    if missing:
        f = next(p for p, e in envs.items() if e is missing[0])
        raise EnvironmentFileError(
            [Problem(f, ("promotes_to",), "promotion forms a cycle; the chain must end (production promotes to nothing)")]
        )
    return ordered
