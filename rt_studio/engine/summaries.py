"""Due batches turned into summary deliveries, one Outcome per rule (as live firing gives).

A summary goes to the recipient its messages were collected for, with the rule as it is now:
a rule deleted or disabled meanwhile sends nothing, nor does a recipient since disabled or
who has muted the rule (unless it is critical). Each document in a batch passed its read
check when its message was collected. The summary uses one slot of the rule's rate limit.
"""

from collections.abc import Mapping

from rt_studio.engine.batching import Batch, summary_subject, summary_text
from rt_studio.engine.evaluate import Context, Delivery, Outcome, count_reason
from rt_studio.engine.messages import summary_message
from rt_studio.engine.mutes import rule_target
from rt_studio.engine.ratelimit import rule_key
from rt_studio.engine.rules import Rule
from rt_studio.engine.verdicts import DELIVER, DISABLED, Recipient, apply_mutes

#: The audience label summary recipients show in traces.
SOURCE = "Batch"


def due_summaries(ctx: Context, rules: Mapping[str, Rule], limit: int) -> list[Outcome]:
	"""Take up to `limit` due batches and build their summaries, grouped by rule."""
	by_rule: dict[str, list[Batch]] = {}
	for batch in ctx.batches.take_due(limit):
		by_rule.setdefault(batch.rule, []).append(batch)
	return [summarize(rules.get(name), name, batches, ctx) for name, batches in by_rule.items()]


def summarize(rule: Rule | None, name: str, batches: list[Batch], ctx: Context) -> Outcome:
	"""The summaries of one rule's due batches; nothing when the rule is gone or disabled."""
	if rule is None or not rule.enabled:
		outcome = Outcome(rule=name, event="Batch")
		outcome.reason = f"{len(batches)} batch(es) not sent: the rule was deleted or disabled"
		return outcome
	outcome = Outcome(rule=rule.name, event=rule.event)
	recipients = [Recipient(batch.user, None, SOURCE) for batch in batches]
	enabled = ctx.directory.enabled_users([rec.user for rec in recipients])
	for rec in recipients:
		if rec.user not in enabled:
			rec.verdict = DISABLED
	apply_mutes(recipients, rule_target(rule.name), rule.critical, ctx.mutes)
	sent_at = ctx.now()
	for batch, rec in zip(batches, recipients, strict=True):
		rec.subject = summary_subject(rule.document_type, batch.count)
		rec.message = summary_text(batch.docnames)
		if rec.verdict != DELIVER:
			continue
		if rule.rate_limit_count:
			ctx.limiter.hit(rule_key(rule.name, rec.user), rule.rate_limit_count, rule.rate_limit_seconds)
		message = summary_message(rule, batch.count, batch.docnames, rec.subject, rec.message, sent_at)
		outcome.deliveries.append(Delivery(rule.name, rule.event_name, rec.user, None, message))
	outcome.recipients = recipients
	outcome.fired = bool(outcome.deliveries)
	outcome.reason = f"summary of batched messages: {count_reason(recipients)}"
	return outcome
