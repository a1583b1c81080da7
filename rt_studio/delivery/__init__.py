"""Delivery: from an engine outcome to messages in desks, after the commit or in a job.

`context` builds the engine's Context on the site; `outbox` queues deliveries and publishes
them after the commit (the one publishing path); `delivery_log` numbers them (`seq`) and keeps
them for `missed`; `deferred` is the background job for large audiences; `rate_limit`,
`batches` (summaries of what a rate limit held back), `mutes` and `idempotency` (repeated
channel posts) keep their state in Redis; `trace` records what each rule decided.
"""
