"""What a Google Cloud project must have before an environment's first apply: the APIs (plan-time
ones included), the service agents, the deploy and plan accounts' roles, the billing roles, the
permissions the apply uses, and the Workload Identity mapping (``gcp_requirements.yaml``, each item
with its source). ``infra bootstrap`` makes them; ``infra preflight`` checks them; one list."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from environments.schema import Environment

DATA = Path(__file__).with_name("gcp_requirements.yaml")


@cache
def gcp_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DATA.read_text())
    return data


def applies(item: dict[str, Any], env: Environment) -> bool:
    """Whether a ``when:``-conditioned item applies to ``env``."""
    when = item.get("when")
    gcp = env.gcp
    assert gcp is not None
    if when == "build_triggers":
        return bool(gcp.build_triggers)
    if when == "rbac_group":
        return bool(gcp.cluster and gcp.cluster.rbac_security_group)
    return when is None


def services(env: Environment) -> list[str]:
    return [s["id"] for s in gcp_data()["services"] if applies(s, env)]


def agent_email(agent: dict[str, Any], number: str) -> str:
    return str(agent["email"]).replace("{number}", number)
