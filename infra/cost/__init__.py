"""``infra cost``: the monthly cost of each environment, offline, from the synthesized JSON
(:mod:`infra.cost.estimate`), the change between two snapshots (:mod:`infra.cost.diff`)."""
