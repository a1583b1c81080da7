"""The recipient's preferences applied to one message (engine.preferences): per rule and channel over
the default, critical messages untouched, quiet hours in each person's own time zone with a
controlled clock: a person in UTC+05:30 and one in UTC-05:00 at the same instants."""

from datetime import datetime, timezone

from rt_studio.engine.preferences import apply, describe, effective, quiet_until

INDIA = {"quiet": ["22:00", "07:00"], "tz": "Asia/Kolkata"}  # UTC+05:30
NEW_YORK = {"quiet": ["22:00", "07:00"], "tz": "America/New_York"}  # UTC-05:00 in December


def utc(hour: int, minute: int = 0) -> datetime:
	return datetime(2026, 12, 7, hour, minute, tzinfo=timezone.utc)


def message(**extra) -> dict:
	return {
		"rule": "R",
		"channel": None,
		"display": "Alert",
		"browser_notification": True,
		"critical": False,
		**extra,
	}


def test_a_rule_or_channel_of_its_own_wins_over_the_default():
	entry = {
		"default": {"alert": False, "browser": True, "email": "Never"},
		"rules": {"R": {"alert": True, "browser": False, "email": "Digest"}},
		"channels": {"ops": {"alert": True, "browser": True, "email": "When Unread"}},
	}
	assert effective(entry, rule="R") == {"alert": True, "browser": False, "email": "Digest"}
	assert effective(entry, rule="other") == {"alert": False, "browser": True, "email": "Never"}
	assert effective(entry, channel="ops")["alert"] is True
	assert effective(None) == {"alert": True, "browser": True, "email": "When Unread"}


def test_alert_off_holds_the_popup_and_browser_off_the_system_notification():
	now = utc(12)
	assert apply(message(), {}, now) == message()
	held = apply(message(), {"rules": {"R": {"alert": False, "browser": True, "email": "Never"}}}, now)
	assert held["alert"] is False and held["browser_notification"] is True
	quiet = apply(message(), {"default": {"alert": True, "browser": False, "email": "Never"}}, now)
	assert "alert" not in quiet and quiet["browser_notification"] is False
	# a bell entry does not pop up: alert off changes nothing of it
	bell = message(display="Notification Log", browser_notification=False)
	assert apply(bell, {"default": {"alert": False, "browser": True, "email": "Never"}}, now) == bell


def test_a_critical_message_ignores_every_preference_and_quiet_hours():
	entry = {"default": {"alert": False, "browser": False, "email": "Never"}, **INDIA}
	critical = message(critical=True)
	assert apply(critical, entry, utc(18)) is critical  # 23:30 in India: quiet hours
	assert describe(entry, "R", None, True, utc(18)) == "critical: preferences do not apply"


def test_quiet_hours_in_two_time_zones_at_the_same_instants():
	# 17:00 UTC: 22:30 in India (quiet), 12:00 in New York (not)
	assert quiet_until(INDIA, utc(17)) == "07:00"
	assert quiet_until(NEW_YORK, utc(17)) is None
	# 03:00 UTC: 08:30 in India (over), 22:00 in New York (quiet begins)
	assert quiet_until(INDIA, utc(3)) is None
	assert quiet_until(NEW_YORK, utc(3)) == "07:00"
	# 01:29 UTC is 06:59 in India, 01:30 is 07:00: the end is not quiet
	assert quiet_until(INDIA, utc(1, 29)) == "07:00"
	assert quiet_until(INDIA, utc(1, 30)) is None
	# 11:59 UTC is 06:59 in New York, 12:00 is 07:00
	assert quiet_until(NEW_YORK, utc(11, 59)) == "07:00"
	assert quiet_until(NEW_YORK, utc(12)) is None


def test_during_quiet_hours_a_message_arrives_without_alert_or_browser_notification():
	held = apply(message(), NEW_YORK, utc(4))  # 23:00 in New York
	assert (held["alert"], held["browser_notification"], held["quiet_until"]) == (False, False, "07:00")
	assert apply(message(), INDIA, utc(4)) == message()  # 09:30 in India
	assert describe(NEW_YORK, "R", None, False, utc(4)) == "quiet hours until 07:00"


def test_daytime_quiet_hours_do_not_run_over_midnight():
	lunch = {"quiet": ["12:00", "13:00"], "tz": "Asia/Kolkata"}
	assert quiet_until(lunch, utc(6, 45)) == "13:00"  # 12:15 in India
	assert quiet_until(lunch, utc(18, 30)) is None  # 00:00 in India


def test_describe_names_what_is_off():
	entry = {"default": {"alert": False, "browser": True, "email": "Never"}}
	assert describe(entry, "R", None, False, utc(12)) == "alert off, email off"
	assert describe({}, "R", None, False, utc(12)) == "as the rule sends it"
