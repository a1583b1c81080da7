"""When a time rule's message about a document is due, and when it may be sent.

A Days Before / Days After rule is due at 00:00 of the day that lies `days_in_advance` days
before / after the document's date; a Minutes Before / Minutes After rule `minutes_offset`
minutes before / after its datetime. A send window (`send_after`, `send_before`,
`send_days`) holds a message that comes due outside it until the window next opens; it never
drops one. All times are naive, in the site's time zone.

The scheduler runs every few minutes with the time of its last run: a message is sent by the
first run whose interval (last run, now] holds its send time, so a late run (downtime, a busy
queue) still sends what came due meanwhile, back to at most CATCH_UP before now. The site
keeps which (rule, document, due time) were handled, so a repeated or overlapping run never
sends one twice; this module only computes.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from rt_studio.engine.docview import moment_of
from rt_studio.engine.events import DAY_EVENTS, DAYS_BEFORE, MINUTES_BEFORE

#: How far back a late run still sends what came due: a day of downtime is recovered, while
#: a site that was off for a week does not flood its users with a week of reminders.
CATCH_UP = timedelta(hours=24)
#: The longest a send window can hold a message: it opens at least once a week.
LONGEST_HOLD = timedelta(days=7)
#: Days in advance a rule may count: ten years is the longest reminder anyone sets.
MAX_DAYS = 3660
#: Minutes a rule may count: a year (longer offsets are written in days).
MAX_MINUTES = 366 * 24 * 60

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
#: {"mon": 0, "monday": 0, ...}: what `send_days` accepts for each weekday (Monday is 0).
DAY_NAMES = {
	name: number
	for number, full in enumerate(
		("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
	)
	for name in (full, full[:3])
}
TIME_OF_DAY = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?$")


@dataclass(frozen=True, slots=True)
class SendWindow:
	"""The hours and weekdays messages may go out; `after` > `before` spans midnight."""

	after: time | None = None
	before: time | None = None
	days: frozenset[int] = frozenset(range(7))

	def intervals(self, day: date):
		"""The open intervals of one day, in order, each (start, end) with end exclusive."""
		if day.weekday() not in self.days:
			return
		midnight = datetime.combine(day, time())
		start = midnight + _since_midnight(self.after) if self.after else midnight
		end = midnight + _since_midnight(self.before) if self.before else midnight + timedelta(days=1)
		if start < end:
			yield start, end
		else:  # across midnight: the morning part, then the evening part
			yield midnight, end
			yield start, midnight + timedelta(days=1)

	def next_open(self, moment: datetime) -> datetime | None:
		"""The first moment at or after `moment` when the window is open."""
		for offset in range(LONGEST_HOLD.days + 1):
			for start, end in self.intervals(moment.date() + timedelta(days=offset)):
				if end > moment:
					return max(start, moment)
		return None


def _since_midnight(moment: time) -> timedelta:
	return timedelta(hours=moment.hour, minutes=moment.minute, seconds=moment.second)


def parse_time_of_day(text: str) -> time:
	"""'9:00', '09:00:00' (as Frappe stores a Time field); ValueError otherwise."""
	match = TIME_OF_DAY.match(text.strip())
	if not match:
		raise ValueError(f"{text!r} is not a time of day: write it as 09:00")
	hours, minutes, seconds = (int(g or 0) for g in match.groups())
	if hours > 23 or minutes > 59 or seconds > 59:
		raise ValueError(f"{text!r} is not a time of day: hours 0-23, minutes 0-59")
	return time(hours, minutes, seconds)


def parse_days(text: str) -> frozenset[int]:
	"""'Mon,Tue,Wed' (names or their first three letters, any case); ValueError otherwise."""
	days = set()
	for token in re.split(r"[\s,;]+", text.strip()):
		if token and token.lower() not in DAY_NAMES:
			raise ValueError(f"{token!r} is not a weekday: use Mon, Tue, Wed, Thu, Fri, Sat, Sun")
		if token:
			days.add(DAY_NAMES[token.lower()])
	return frozenset(days)


def send_window(after: str, before: str, days: str) -> SendWindow | None:
	"""The window the three fields describe, None when all are empty; ValueError naming the
	field (as `field: problem`) when one cannot be read."""
	if not (after or before or days):
		return None
	window = {}
	for field, text in (("send_after", after), ("send_before", before)):
		if text:
			try:
				window[field] = parse_time_of_day(text)
			except ValueError as e:
				raise ValueError(f"{field}: {e}") from None
	if window.get("send_after") is not None and window.get("send_after") == window.get("send_before"):
		raise ValueError("send_before: equals send_after: leave both empty to send at any time")
	try:
		weekdays = parse_days(days) if days else frozenset(range(7))
	except ValueError as e:
		raise ValueError(f"send_days: {e}") from None
	if not weekdays:
		raise ValueError("send_days: names no weekday: list days such as Mon,Tue,Wed,Thu,Fri")
	return SendWindow(window.get("send_after"), window.get("send_before"), weekdays)


# ---------------------------------------------------------------- due times


def watched_field(rule) -> str:
	return rule.date_changed if rule.event in DAY_EVENTS else rule.datetime_changed


def offset(rule) -> timedelta:
	"""How long before (negative) or after the document's date the message is due."""
	if rule.event in DAY_EVENTS:
		delta = timedelta(days=rule.days_in_advance)
	else:
		delta = timedelta(minutes=rule.minutes_offset)
	return -delta if rule.event in (DAYS_BEFORE, MINUTES_BEFORE) else delta


def due_at(rule, doc: Mapping) -> datetime | None:
	"""When the rule's message about this document is due; None when its date is empty."""
	moment = moment_of(doc.get(watched_field(rule)))
	if moment is None:
		return None
	if rule.event in DAY_EVENTS:
		moment = datetime.combine(moment.date(), time())
	try:
		return moment + offset(rule)
	except OverflowError:
		return None


def send_at(rule, due: datetime) -> datetime | None:
	"""When a message due at `due` goes out: then, or when the send window next opens."""
	window = rule.send_window
	return due if window is None else window.next_open(due)


def catch_up_since(last_run: datetime | None, now: datetime, interval: timedelta) -> datetime:
	"""The start of the interval a run at `now` sends for: the last run, at most CATCH_UP back
	(and one scheduler `interval` back when there was no run before)."""
	if last_run is None:
		return now - interval
	return max(last_run, now - CATCH_UP)


def due_in(rule, doc: Mapping, since: datetime, now: datetime) -> datetime | None:
	"""The due time of the document's message when it is to be sent in (since, now]."""
	return None if why_not_due(rule, doc, since, now) else due_at(rule, doc)


def why_not_due(rule, doc: Mapping, since: datetime, now: datetime) -> str | None:
	"""None when the document's message is to be sent in (since, now]; otherwise why not."""
	field = watched_field(rule)
	due = due_at(rule, doc)
	if due is None:
		return f"{field} is empty"
	if due > now:
		return f"not due yet: due {_shown(due)}"
	sending = send_at(rule, due)
	if sending is None:
		return f"due {_shown(due)}, but the send window never opens"
	if sending > now:
		return f"due {_shown(due)}, held by the send window until {_shown(sending)}"
	if sending <= since:
		return f"due {_shown(due)}, to be sent by a run before {_shown(since)}"
	return None


def _shown(moment: datetime) -> str:
	return moment.strftime("%Y-%m-%d %H:%M")


def field_range(rule, since: datetime, now: datetime) -> tuple[datetime, datetime]:
	"""The values of the watched field whose message may be sent in (since, now]: what the site
	asks the database for before `due_in` decides per document (inclusive at both ends)."""
	earliest_due = since - (LONGEST_HOLD if rule.send_window is not None else timedelta(0))
	low, high = earliest_due - offset(rule), now - offset(rule)
	if rule.event in DAY_EVENTS:
		# the due day is the date's day moved: any time of that date counts
		low = datetime.combine(low.date(), time())
		high = datetime.combine(high.date(), time.max)
	return low, high
