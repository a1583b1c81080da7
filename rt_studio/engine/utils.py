"""Date and number helpers for conditions and templates when no Frappe site is around.

On a site, the Frappe layer passes Frappe's own `frappe.utils` helpers instead, so a
condition behaves exactly as in a Notification; these mirror the ones conditions use most,
for the offline CLI and the tests.
"""

import math
from datetime import date, datetime, timedelta


def getdate(value=None) -> date | None:
	if value is None or value == "":
		return date.today() if value is None else None
	if isinstance(value, datetime):
		return value.date()
	if isinstance(value, date):
		return value
	return datetime.fromisoformat(str(value).strip()[:10]).date()


def get_datetime(value=None) -> datetime | None:
	if value is None:
		return datetime.now()
	if value == "":
		return None
	if isinstance(value, datetime):
		return value
	if isinstance(value, date):
		return datetime(value.year, value.month, value.day)
	return datetime.fromisoformat(str(value).strip())


def now_datetime() -> datetime:
	return datetime.now()


def nowdate() -> str:
	return date.today().isoformat()


today = nowdate


def now() -> str:
	return datetime.now().isoformat(sep=" ")


def nowtime() -> str:
	return datetime.now().strftime("%H:%M:%S.%f")


def add_to_date(value, years=0, months=0, weeks=0, days=0, hours=0, minutes=0, seconds=0, as_string=False):
	is_datetime = isinstance(value, datetime) or (isinstance(value, str) and len(value.strip()) > 10)
	moment = get_datetime(value) if is_datetime else getdate(value)
	if years or months:
		total = moment.month - 1 + months + 12 * years
		year, month = moment.year + total // 12, total % 12 + 1
		last_day = (date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)).day
		moment = moment.replace(year=year, month=month, day=min(moment.day, last_day))
	delta = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
	moment = moment + delta
	if as_string:
		return moment.isoformat(sep=" ") if isinstance(moment, datetime) else moment.isoformat()
	return moment


def add_days(value, days):
	return add_to_date(value, days=days)


def add_months(value, months):
	return add_to_date(value, months=months)


def add_years(value, years):
	return add_to_date(value, years=years)


def date_diff(end, start) -> int:
	return (getdate(end) - getdate(start)).days


def time_diff_in_seconds(end, start) -> float:
	return (get_datetime(end) - get_datetime(start)).total_seconds()


def time_diff_in_hours(end, start) -> float:
	return round(time_diff_in_seconds(end, start) / 3600, 6)


def flt(value, precision=None) -> float:
	try:
		number = float(str(value).replace(",", "")) if isinstance(value, str) else float(value or 0)
	except (TypeError, ValueError):
		number = 0.0
	return round(number, precision) if precision is not None else number


def cint(value) -> int:
	try:
		return int(float(value or 0))
	except (TypeError, ValueError):
		return 0


def cstr(value) -> str:
	return "" if value is None else str(value)


def ceil(value) -> int:
	return math.ceil(flt(value))


def floor(value) -> int:
	return math.floor(flt(value))


def rounded(value, precision=0):
	return round(flt(value), precision)


def strip_html(text) -> str:
	import re

	return re.sub(r"<[^>]*>", "", cstr(text))


#: The helpers conditions and templates may call as `frappe.utils.<name>`.
OFFLINE_UTILS = {
	name: globals()[name]
	for name in (
		"getdate",
		"get_datetime",
		"now_datetime",
		"nowdate",
		"today",
		"now",
		"nowtime",
		"add_to_date",
		"add_days",
		"add_months",
		"add_years",
		"date_diff",
		"time_diff_in_seconds",
		"time_diff_in_hours",
		"flt",
		"cint",
		"cstr",
		"ceil",
		"floor",
		"rounded",
		"strip_html",
	)
}
