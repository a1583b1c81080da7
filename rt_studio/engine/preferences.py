"""What a person's preferences do to one message: pure decisions, given their preferences and the time.

A person's preferences (`entry`, as rt_studio.delivery.preferences caches it) are
`{"default": P, "rules": {rule: P}, "channels": {channel: P}, "quiet": ["HH:MM", "HH:MM"],
"tz": "Asia/Kolkata", "digest": "Off"}`, every key optional, P being `{"alert": bool, "browser": bool,
"email": "Never" | "When Unread" | "Digest"}`. A rule's or channel's own P wins over the default.
A critical message ignores all of it. Quiet hours are read in the person's own time zone and may
run over midnight (22:00 to 07:00).
"""

from datetime import datetime
from zoneinfo import ZoneInfo

WHEN_UNREAD, NEVER, DIGEST = "When Unread", "Never", "Digest"
EMAIL_CHOICES = (WHEN_UNREAD, NEVER, DIGEST)
DIGEST_CHOICES = ("Off", "Daily", "Weekly")
#: What a person who chose nothing gets: everything the rule offers.
DEFAULT = {"alert": True, "browser": True, "email": WHEN_UNREAD}
#: Displays that pop up on the desk: what "live alert off" and quiet hours hold back.
POPUPS = ("Alert", "Sticky")


def effective(entry: dict | None, rule: str | None = None, channel: str | None = None) -> dict:
	"""The P that holds for a message of `rule` (or `channel`): its own, else the default."""
	entry = entry or {}
	own = (entry.get("rules") or {}).get(rule) if rule else (entry.get("channels") or {}).get(channel)
	return {**DEFAULT, **(entry.get("default") or {}), **(own or {})}


def quiet_until(entry: dict | None, now: datetime) -> str | None:
	"""The end of the quiet hours ("HH:MM", the person's own clock) if `now` (aware) is inside them."""
	quiet = (entry or {}).get("quiet")
	if not quiet:
		return None
	start, end = quiet
	local = now.astimezone(ZoneInfo(entry.get("tz") or "UTC")).strftime("%H:%M")
	inside = start <= local < end if start < end else local >= start or local < end
	return end if inside else None


def apply(message: dict, entry: dict | None, now: datetime) -> dict:
	"""The message as it goes to this person: unchanged, or a copy that says `alert: false` (the desk
	shows no popup; the inbox still counts it), `browser_notification: false`, and `quiet_until`."""
	if not entry or message.get("critical"):
		return message
	choice = effective(entry, message.get("rule"), message.get("channel"))
	quiet = quiet_until(entry, now)
	alert = choice["alert"] and not quiet
	browser = choice["browser"] and not quiet
	if (alert or message.get("display") not in POPUPS) and (
		browser or not message.get("browser_notification")
	):
		return message
	changed = dict(message)
	if not alert and message.get("display") in POPUPS:
		changed["alert"] = False
	if not browser:
		changed["browser_notification"] = False
	if quiet:
		changed["quiet_until"] = quiet
	return changed


def describe(entry: dict | None, rule: str | None, channel: str | None, critical: bool, now: datetime) -> str:
	"""A recipient's effective preference in a few words, for Preview and Test Fire."""
	if critical:
		return "critical: preferences do not apply"
	choice = effective(entry, rule, channel)
	parts = []
	quiet = quiet_until(entry, now)
	if quiet:
		parts.append(f"quiet hours until {quiet}")
	if not choice["alert"]:
		parts.append("alert off")
	if not choice["browser"]:
		parts.append("browser notification off")
	if choice["email"] != WHEN_UNREAD:
		parts.append("email off" if choice["email"] == NEVER else "email in the digest")
	return ", ".join(parts) or "as the rule sends it"
