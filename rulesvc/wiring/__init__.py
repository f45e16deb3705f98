"""The composition root: the one place where storage adapters meet the use cases.

`services` builds what the HTTP app serves (decisions, lifecycle, webhooks, SLA reports), `timers` what a
worker runs (timer firing, re-plans, webhook delivery), `lifecycle` the ruleset and calendar lifecycle both
share, and `database` opens (and migrates) a database for them and for the command line. `api/` and
`scheduler/` build their processes through here and never name a storage class; no other core package
imports `rulesvc.storage` (the import contracts in pyproject.toml hold this).
"""
