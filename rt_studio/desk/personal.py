"""The API for every desk user: posting to a Realtime Channel. (A user's own mutes are served by
desk/muting.py, missed messages beside their state in delivery/delivery_log.py.)
The desk calls it as `rt_studio.api.publish`.
"""

import frappe
from frappe import _

from rt_studio.delivery import idempotency, outbox
from rt_studio.delivery.mutes import SiteMutes
from rt_studio.delivery.rate_limit import RedisRateLimiter, UnlimitedRateLimiter
from rt_studio.engine.evaluate import MUTED, Context, channel_post
from rt_studio.engine.ratelimit import channel_key
from rt_studio.engine.rules import event_name_problem
from rt_studio.people.channels import load_channel
from rt_studio.people.permissions import is_manager, member_of
from rt_studio.people.site import FrappeDirectory, site_now


@frappe.whitelist(methods=["POST"])
def publish(channel: str, message: str, event: str | None = None, idempotency_key: str | None = None) -> dict:
	"""Post a message to a channel's current members (but those who muted it).

	The poster must hold one of the channel's publish roles (or be a member when it has
	none); the channel's per-publisher rate limit applies. The text is HTML-escaped. A
	repeated `idempotency_key` within 24 hours sends nothing and returns the first result.
	"""
	user = frappe.session.user
	if user == "Guest":
		raise frappe.PermissionError(_("Log in to post to a channel"))
	found = load_channel(channel)
	if found is None or not found.enabled:
		frappe.throw(_("Realtime Channel {0} does not exist or is disabled").format(frappe.bold(channel)))
	if not _may_publish(found, user):
		raise frappe.PermissionError(_("You may not post to channel {0}").format(frappe.bold(channel)))
	if event and not is_manager(user):
		raise frappe.PermissionError(_("Only a System Manager may choose the event name"))
	if event and (why_not := event_name_problem(event)):
		frappe.throw(_("event: {0}").format(frappe.utils.escape_html(why_not)))
	if idempotency_key:
		idempotency.check(idempotency_key)
		earlier = idempotency.earlier_result(user, found.name, idempotency_key)
		if earlier is not None:
			return earlier
	if found.rate_limit_count and not RedisRateLimiter().hit(
		channel_key(found.name, user), found.rate_limit_count, found.rate_limit_seconds
	):
		frappe.throw(
			_("Channel {0} allows {1} messages per {2} seconds: wait and try again").format(
				frappe.bold(channel), found.rate_limit_count, found.rate_limit_seconds
			),
			exc=frappe.RateLimitExceededError,
		)
	text = frappe.utils.escape_html(message or "").strip()
	if not text:
		frappe.throw(_("The message is empty"))
	ctx = Context(FrappeDirectory(), UnlimitedRateLimiter(), mutes=SiteMutes(), now=site_now)
	outcome = channel_post(found, text, user, event or found.event_name, ctx)
	muted = sum(1 for rec in outcome.recipients if rec.verdict == MUTED)
	result = {"channel": found.name, "sent": len(outcome.deliveries), "muted": muted}
	if idempotency_key:
		earlier = idempotency.claim(user, found.name, idempotency_key, result)
		if earlier is not None:
			return earlier
	outbox.publish(outcome)
	return result


def _may_publish(channel, user: str) -> bool:
	if is_manager(user):
		return True
	if channel.publish_roles:
		return bool(set(channel.publish_roles) & set(frappe.get_roles(user)))
	return member_of(channel, user)
