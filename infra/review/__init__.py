"""``infra review``: what a change does to each environment (:mod:`infra.review.compare`), rendered
for people and pull requests (:mod:`infra.review.report`)."""
