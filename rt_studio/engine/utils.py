"""Date and number helpers for conditions and templates when no Frappe site is around.

On a site, the Frappe layer passes Frappe's own `frappe.utils` helpers instead, so a
condition behaves exactly as in a Notification; these mirror the ones conditions use most,
for the offline CLI and the tests.
"""

import math
from datetime import date, datetime, timedelta


def _now() -> datetime:
	"""The one clock every helper here reads (tests set it; a site uses Frappe's helpers)."""
	return datetime.now()


def getdate(value=None) -> date | None:
	if value is None or value == "":
		return _now().date() if value is None else None
	if isinstance(value, datetime):
		return value.date()
	if isinstance(value, date):
		return value
	return datetime.fromisoformat(str(value).strip()[:10]).date()


def get_datetime(value=None) -> datetime | None:
	if value is None:
		return _now()
	if value == "":
		return None
	if isinstance(value, datetime):
		return value
	if isinstance(value, date):
		return datetime(value.year, value.month, value.day)
	return datetime.fromisoformat(str(value).strip())


def now_datetime() -> datetime:
	return _now()


def nowdate() -> str:
	return _now().date().isoformat()


today = nowdate


def now() -> str:
	return _now().isoformat(sep=" ")


def nowtime() -> str:
	return _now().strftime("%H:%M:%S.%f")


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

#: The names of the helpers a site offers as `frappe.utils.<name>` (Frappe v15's list for
#: Notification conditions, `frappe.utils.safe_exec.VALID_UTILS`), so an offline check knows
#: a misspelt helper from one that exists only on a site. Names only: on a site the helpers
#: themselves come from Frappe.
FRAPPE_UTIL_NAMES = frozenset(OFFLINE_UTILS) | frozenset(
	"""
	DATE_FORMAT TIME_FORMAT DATETIME_FORMAT is_invalid_date_string getdate get_datetime to_timedelta
	get_timedelta add_to_date add_days add_months add_years date_diff month_diff time_diff
	time_diff_in_seconds time_diff_in_hours now_datetime get_timestamp get_eta get_system_timezone
	convert_utc_to_system_timezone now nowdate today nowtime get_first_day get_quarter_start
	get_quarter_ending get_first_day_of_week get_year_start get_last_day_of_week get_last_day get_time
	get_datetime_in_timezone get_datetime_str get_date_str get_time_str get_user_date_format
	get_user_time_format format_date format_time format_datetime format_duration get_weekdays
	get_weekday get_timespan_date_range global_date_format has_common flt cint floor ceil cstr rounded
	remainder safe_div round_based_on_smallest_currency_fraction encode parse_val fmt_money
	get_number_format_info money_in_words in_words is_html is_image get_thumbnail_base64_for_image
	image_to_base64 pdf_to_base64 strip_html escape_html pretty_date comma_or comma_and comma_sep
	new_line_sep filter_strip_join get_url get_host_name_from_request url_contains_port get_host_name
	get_link_to_form get_link_to_report get_absolute_url get_url_to_form get_url_to_list
	get_url_to_report get_url_to_report_with_filters evaluate_filters compare get_filter
	make_filter_tuple make_filter_dict sanitize_column scrub_urls expand_relative_urls quoted quote_urls
	unique strip to_markdown md_to_html markdown is_subset generate_hash formatdate
	get_user_info_for_avatar get_abbr
	""".split()
)
