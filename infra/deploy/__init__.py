"""``infra deploy``: apply what was reviewed, and nothing else (:mod:`infra.deploy.gate`)."""
