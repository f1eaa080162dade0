"""``infra tco``: the 5-year total cost of ownership, cloud against on-prem GPU servers."""
