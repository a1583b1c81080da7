"""The engine's Context on this site: Frappe's utils and the site's directory, Redis rate limits,
mutes and batches. Built for each event by the save path (save/handler.py), the delivery job,
the batch summaries, the time rules and the desk's preview and test fire.
"""

from rt_studio.engine.evaluate import Context
from rt_studio.engine.mutes import rule_target


def context_for(doc, shares=None, rule=None) -> Context:
	"""The engine context for one event on this site (Frappe's utils, Redis limits, mutes, batches).

	`shares` stands in for a deleted document's shares (see `deferred`). With `rule` (the one
	rule a delivery job evaluates), its mutes are read with the roles of each chunk of users;
	without (a save's rules), the request's first read of the mutes and of the recipients'
	preferences rides with the first recipients' roles.
	"""
	from rt_studio.delivery.batches import RedisBatches
	from rt_studio.delivery.mutes import FirstRead, SiteMutes
	from rt_studio.delivery.rate_limit import RedisRateLimiter
	from rt_studio.people.site import FrappeDirectory, FrappeMeta, frappe_utils, rule_budget_ms, site_now

	mutes = SiteMutes()
	if rule is None:
		ahead = FirstRead()
	else:
		# a critical rule's recipients are never asked for mutes (engine.verdicts.apply_mutes)
		ahead = mutes.read_ahead(rule_target(rule.name)) if not rule.critical else None
	return Context(
		FrappeDirectory(doc, shares, read_along=ahead),
		RedisRateLimiter(),
		mutes=mutes,
		batches=RedisBatches(),
		utils=frappe_utils(),
		now=site_now,
		budget_ms=rule_budget_ms(),
		meta=FrappeMeta(),
	)
