"""Subnet arithmetic shared by the network constructs (names come from ``Environment.resource_name``)."""

from __future__ import annotations

import ipaddress


def split_subnets(cidr: str, count: int, *, offset: int) -> list[str]:
    """``count`` subnets of ``cidr`` four bits longer, starting at index ``offset``.

    A /16 gives /20s: private subnets at offsets 0.., public ones at 8.., so adding an AZ never
    renumbers an existing subnet (a changed ``cidr_block`` replaces it).
    """
    net = ipaddress.IPv4Network(cidr)
    subnets = list(net.subnets(prefixlen_diff=4))
    return [str(s) for s in subnets[offset : offset + count]]
