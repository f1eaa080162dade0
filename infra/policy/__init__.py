"""``infra policy``: the policy gate (:mod:`infra.policy.gate`): checkov and our rules over every stack."""
