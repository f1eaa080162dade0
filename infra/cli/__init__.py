"""The edge of ``infra``: one module per group of verbs (:mod:`infra.cli.app` registers them all),
shared options (:mod:`infra.cli.options`), output for terminals, logs and files
(:mod:`infra.cli.output`) and the one map from errors to exit codes (:mod:`infra.cli.exits`). No
logic beyond parsing and printing: each command calls its verb and shows what it returns."""
