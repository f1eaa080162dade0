"""The one secret detector: what a secret-looking key or value is. The policy gate fails a stack that
holds one (MLP011); the review, plan and drift reports mask one, so that nothing a pull-request
comment shows can leak it.

* a key is secret-looking when one of its path segments ends in a credential word
  (``password``, ``token``, ``api_key``, ``client_secret``, …), with a separator before it so
  ``secret_arn`` and ``token_ttl`` are names, not secrets;
* a value is secret-looking when it has the shape of a credential (AWS access key ids, AKIA and
  ASIA; private keys; GitHub, Slack, Google API and Stripe keys; JSON web tokens).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

MASK = "(sensitive)"
SECRET_VALUE = {
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "GitHub token": re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})\b"),
    "Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "JSON web token": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    "Stripe live key": re.compile(r"\b[sr]k_live_[0-9A-Za-z]{16,}\b"),
    "service account key": re.compile(r"\"private_key\"\s*:"),
}
SECRET_KEY = re.compile(
    r"(^|[_.-])(password|passwd|pwd|secret|secret[_-]?key|token|auth[_-]?token|api[_-]?key|apikey|private[_-]?key|"
    r"access[_-]?key|client[_-]?(secret|key)|credentials?|auth[_-]?string|kubeconfig)$",
    re.IGNORECASE,
)
NOT_A_SECRET = re.compile(r"^(\$\{.*\}|true|false|null|none|)$", re.IGNORECASE)  # a reference or an empty flag
_SEGMENTS = re.compile(r"[.{}\[\]]+")


def secret_key(path: str) -> bool:
    """Whether a JSON path (``environment.variables.DB_PASSWORD``) names a credential."""
    return any(SECRET_KEY.search(k) for k in _SEGMENTS.split(path) if k and not k.isdigit())


def secret_value(text: str) -> str | None:
    """What kind of credential ``text`` looks like, or None."""
    for kind, pattern in SECRET_VALUE.items():
        if pattern.search(text):
            return kind
    return None


def is_sensitive(path: str, value: Any) -> bool:
    """Mask this value in a report: its key names a credential, or it looks like one."""
    return secret_key(path) or (isinstance(value, str) and secret_value(value) is not None)


def mask(value: str) -> str:
    return value[:4] + "…" if len(value) > 8 else "…"


def find_secrets(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """``(json path, what it looks like)`` for every secret-looking literal under ``node`` (cdktf's
    metadata skipped; references and flags under a credential key are not literals)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "//":  # cdktf's metadata
                continue
            sub = f"{path}.{key}" if path else str(key)
            if isinstance(value, str) and secret_key(str(key)) and not NOT_A_SECRET.match(value.strip()):
                yield sub, f"a literal value ({mask(value)}) under a key named {key!r}"
            yield from find_secrets(value, sub)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from find_secrets(value, f"{path}[{i}]")
    elif isinstance(node, str):
        for kind, pattern in SECRET_VALUE.items():
            match = pattern.search(node)
            if match:
                yield path, f"what looks like a {kind} ({mask(match.group(0))})"
