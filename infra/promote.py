"""``infra promote --from dev --to staging --evidence smoke-dev.json``: move the images that passed in
the source environment into the target environment file, pinned by digest.

The evidence is the source's smoke record (``infra smoke ENV --record``, uploaded by every deploy):
which commit and synth hash were applied, whether the checks passed, and for each image the
environment pins (``serving``, ``aws.endpoints[i]``) the digest the registry resolved. A pin is
promoted only as a digest that passed there; a tag the evidence has no digest for, a digest that did
not pass, or a failed smoke run is refused. The target file is rewritten with a YAML round trip that
keeps its comments and key order (``image_tag: x`` becomes ``image_digest: sha256:…`` in place), then
validated; on any error it is left as it was. Promotion never rebuilds or retags: the same bytes
move forward, and the printed pull-request text carries the evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from environments.editor import edit_env_file
from environments.loader import Environments, loaded
from environments.schema import Environment
from infra.errors import InfraError


class PromotionRefused(InfraError):
    """The source's evidence does not support promoting; the target file is unchanged."""

    exit_code = 1


@dataclass
class Pin:
    field: str  # serving | aws.endpoints[<name>]
    registry: str
    source_ref: str
    digest: str
    target_before: str


@dataclass
class Promotion:
    source: str
    target: str
    commit: str
    synth_hash: str
    pins: list[Pin] = field(default_factory=list)
    target_file: Path | None = None
    changed: bool = False

    @property
    def branch(self) -> str:
        short = self.pins[0].digest.removeprefix("sha256:")[:12] if self.pins else self.commit[:12]
        return f"promote/{self.source}-to-{self.target}-{short}"

    def pull_request(self, target_branch: str, source_branch: str) -> str:
        lines = [
            f"Promote images {self.source} → {self.target}",
            "",
            f"Images that passed the smoke checks of **{self.source}** (`{source_branch}` at `{self.commit[:12]}`, "
            f"synth hash `{self.synth_hash[:12]}`), pinned by digest in `environments/{self.target}.yaml`. Merge into "
            f"`{target_branch}` to deploy them.",
            "",
            "| field | registry | in " + self.source + " | digest | was in " + self.target + " |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [f"| `{p.field}` | {p.registry} | `{p.source_ref}` | `{p.digest}` | `{p.target_before}` |" for p in self.pins]
        return "\n".join(lines) + "\n"


def _evidence_digest(evidence: dict[str, Any], where: str, ref: str) -> str:
    """The digest the source's smoke run resolved for the pin at ``where``; refuse otherwise."""
    if not evidence.get("passed"):
        failed = [f"{c['check']} {c['resource']}" for c in evidence.get("checks", []) if c.get("ok") is False]
        raise PromotionRefused(
            f"the {evidence['env']} smoke run at {evidence['commit'][:12]} failed ({', '.join(failed)}); nothing to promote"
        )
    image = next((i for i in evidence.get("images", []) if i.get("field") == where), None)
    if image is None or not image.get("digest"):
        raise PromotionRefused(
            f"{evidence['env']} {where} pins {ref!r} and its smoke record has no digest for it: a tag without a digest is not "
            "promoted (run `infra smoke` after the deploy, or pin image_digest in the source)"
        )
    if not image.get("passed"):
        raise PromotionRefused(f"{evidence['env']} {where}: digest {image['digest']} did not pass the smoke checks; not promoted")
    if ref.startswith("@") and ref[1:] != image["digest"]:
        raise PromotionRefused(
            f"{evidence['env']} {where} pins {ref[1:]} but its smoke record checked {image['digest']}; re-run the smoke checks"
        )
    return str(image["digest"])


def _pins(source: Environment, target: Environment, evidence: dict[str, Any]) -> list[tuple[tuple[str | int, ...], Pin]]:
    out: list[tuple[tuple[str | int, ...], Pin]] = []
    if source.serving and target.serving:
        digest = _evidence_digest(evidence, "serving", source.serving.image_ref)
        out.append((("serving",), Pin("serving", source.serving.registry, source.serving.image_ref, digest, target.serving.image_ref)))
    if source.aws and target.aws:
        src = {ep.name: (i, ep) for i, ep in enumerate(source.aws.endpoints)}
        for j, ep in enumerate(target.aws.endpoints):
            if ep.name not in src:
                continue
            i, sep = src[ep.name]
            digest = _evidence_digest(evidence, f"aws.endpoints[{i}]", sep.image_ref)
            out.append((("aws", "endpoints", j), Pin(f"aws.endpoints[{ep.name}]", sep.repository, sep.image_ref, digest, ep.image_ref)))
    if not out:
        raise PromotionRefused(
            f"{source.name} and {target.name} share no pinned image (serving, aws.endpoints by name); nothing to promote"
        )
    return out


def _set_digest(doc: Any, path: tuple[str | int, ...], digest: str) -> bool:
    node = doc
    for key in path:
        node = node[key]
    if node.get("image_digest") == digest and "image_tag" not in node:
        return False
    keys = list(node.keys())
    position = keys.index("image_tag") if "image_tag" in node else keys.index("image_digest") if "image_digest" in node else len(keys)
    comment = node.ca.items.pop("image_tag", None) or node.ca.items.pop("image_digest", None)
    node.pop("image_tag", None)
    node.pop("image_digest", None)
    node.insert(position, "image_digest", digest)
    if comment is not None:
        node.ca.items["image_digest"] = comment
    return True


def promote(
    source_name: str, target_name: str, evidence: dict[str, Any], environments: Environments | Path, *, write: bool = True
) -> Promotion:
    envs = loaded(environments)
    source, target = envs.check_promotion(source_name, target_name)
    if evidence.get("env") != source_name:
        raise PromotionRefused(f"the evidence is the smoke record of {evidence.get('env')!r}, not of {source_name!r}")
    pins = _pins(source, target, evidence)
    result = Promotion(source_name, target_name, str(evidence["commit"]), str(evidence.get("synth_hash", "")), [p for _, p in pins])
    path = envs.file_of(target_name)
    result.target_file = path

    def change(doc: Any) -> bool:
        changed = False
        for where, pin in pins:
            changed |= _set_digest(doc, where, pin.digest)
        result.changed = changed
        return changed

    edit_env_file(path, change, write=write)
    return result


def promotion_check(evidence: dict[str, Any], head_sha: str, envs: Environments, target_name: str) -> tuple[bool, str]:
    """Does the pull request into ``target_name`` carry exactly what the environment promoting into
    it runs? Markdown for the review comment: the source's last apply (commit, synth hash, smoke
    result) against the head."""
    target = envs.named(target_name)
    source = envs.source_of(target_name)
    if source is None:
        raise InfraError(f"nothing promotes into {target_name!r}")
    problems = []
    commit = str(evidence.get("commit", ""))
    if evidence.get("env") != source.name:
        problems.append(f"the evidence is from {evidence.get('env')!r}, not {source.name!r}")
    if not evidence.get("passed"):
        problems.append(f"{source.name}'s last smoke checks failed")
    if commit != head_sha:
        problems.append(
            f"{source.name} last applied `{commit[:12]}`, this pull request's head is `{head_sha[:12]}`: it carries commits {source.name} does not run"
        )
    passed = {i["digest"] for i in evidence.get("images", []) if i.get("passed") and i.get("digest")}
    pins = []
    if target.serving:
        pins.append(("serving", target.serving.image_ref))
    pins += [(f"aws.endpoints[{ep.name}]", ep.image_ref) for ep in (target.aws.endpoints if target.aws else [])]
    for where, ref in pins:
        if not ref.startswith("@"):
            problems.append(
                f"{target.name} {where} pins tag `{ref[1:]}`, not a digest (run `infra promote --from {source.name} --to {target.name}`)"
            )
        elif ref[1:] not in passed:
            problems.append(f"{target.name} {where} pins `{ref[1:20]}…`, which did not pass in {source.name}")
    lines = [
        f"### Promotion {source.name} → {target.name}",
        "",
        f"{source.name}'s last apply: commit `{commit[:12]}`, synth hash `{str(evidence.get('synth_hash', ''))[:12]}`, "
        f"smoke {'passed' if evidence.get('passed') else '**failed**'} ({evidence.get('checked_at', '?')}).",
        "",
    ]
    if problems:
        lines += [f"**{target.name} does not receive exactly what {source.name} runs:**", ""] + [f"- {p}" for p in problems]
    else:
        lines.append(f"{target.name} receives exactly what {source.name} runs: the same commit, and only image digests that passed there.")
    return not problems, "\n".join(lines) + "\n"
