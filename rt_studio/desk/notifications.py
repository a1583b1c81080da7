"""Frappe's Notifications as Realtime Rules: what carries over, and what cannot.

A Notification and a Realtime Rule share most of their fields (DocType, event, condition,
subject and message templates), so converting one keeps what it means: the event, the
condition, the recipients as audience rows (a document field, a field of a child table's
rows, a role, the owner, the assignees), the templates. What belongs to email, Slack, SMS or
printing has no place in a realtime message and is listed, with the differences a System
Manager should know, in `not_carried`. The new rule is disabled: preview, test-fire or
backtest it, then enable it.
"""

import frappe
from frappe import _

from rt_studio.engine.errors import Problem
from rt_studio.engine.events import DAY_EVENTS, EVENTS, METHOD, SAVE, VALUE_CHANGE
from rt_studio.engine.rules import RULE_DOCTYPE
from rt_studio.files.rule_checks import split_field, throw_problems
from rt_studio.people.permissions import MANAGER

#: Notification channels, and the display a converted rule uses for each.
DISPLAY_FOR_CHANNEL = {"System Notification": "Notification Log"}
#: Notification fields that have no meaning for a realtime message, and what to tell about each.
NOT_CARRIED = {
	"sender": "Sender (email account): a realtime message has no sender account",
	"sender_email": "Sender Email: a realtime message has no sender address",
	"attach_print": "Attach Print: realtime messages carry no attachments",
	"set_property_after_alert": "Set Property After Alert: a rule never changes the document",
	"slack_webhook_url": "Slack Channel: a rule publishes to desks, not to Slack",
}


@frappe.whitelist(methods=["POST"])
def convert_notification(notification: str) -> dict:
	"""Create a disabled Realtime Rule from a Frappe Notification.

	Returns {"rule": name, "not_carried": [what the rule does not do that the Notification did]}.
	"""
	frappe.only_for(MANAGER)
	source = frappe.get_doc("Notification", notification)
	source.check_permission("read")
	if source.event not in EVENTS:
		frappe.throw(
			_(
				"Notification {0} is sent by event {1}, which a Realtime Rule does not have: only New, Save, Submit, Cancel, Days Before, Days After, Value Change and Method convert"
			).format(frappe.bold(source.name), frappe.bold(source.event or _("(none)")))
		)
	data, not_carried = rule_data(source)
	data, dropped = _valid(data)
	rule = frappe.get_doc(data).insert()
	return {"rule": rule.name, "not_carried": not_carried + dropped}


def rule_data(source) -> tuple[dict, list[str]]:
	"""The Realtime Rule fields for a Notification, and what could not be carried over."""
	not_carried = [text for field, text in NOT_CARRIED.items() if source.get(field)]
	audience, about_recipients = _audience(source)
	data = {
		"doctype": RULE_DOCTYPE,
		"rule_name": _free_name(source.name),
		"enabled": 0,
		"document_type": source.document_type,
		"event": source.event,
		"value_changed": source.value_changed if source.event == VALUE_CHANGE else "",
		"date_changed": source.date_changed if source.event in DAY_EVENTS else "",
		"days_in_advance": source.days_in_advance if source.event in DAY_EVENTS else 0,
		"method": source.method if source.event == METHOD else "",
		"condition_type": "Python",
		"condition": source.condition or "",
		"audience": audience,
		"exclude_actor": 0,  # a Notification also reaches the user who made the change
		"subject": source.subject or "",
		"message": source.message or "",
		"display": _display(source),
		"indicator": "blue",
	}
	return data, not_carried + about_recipients + _differences(source)


def _display(source) -> str:
	if source.channel in DISPLAY_FOR_CHANNEL:
		return DISPLAY_FOR_CHANNEL[source.channel]
	return "Notification Log" if source.send_system_notification else "Alert"


def _audience(source) -> tuple[list[dict], list[str]]:
	"""Audience rows for the recipients; what a recipient row held that a rule cannot use."""
	rows, notes = [], []
	meta = frappe.get_meta(source.document_type)
	for index, recipient in enumerate(source.recipients, 1):
		condition = {"condition": recipient.condition} if recipient.condition else {}
		field = (recipient.receiver_by_document_field or "").strip()
		if field == "owner":
			rows.append({"audience_type": "Owner", **condition})
		elif field:
			rows.append({"audience_type": "User Field", "user_field": _user_field(field), **condition})
			if not _holds_users(meta, _user_field(field)):
				notes.append(
					f"Recipient {index}: {field} holds email addresses: only addresses that are users of "
					"this site get the message"
				)
		if recipient.receiver_by_role:
			rows.append({"audience_type": "Role", "role": recipient.receiver_by_role, **condition})
		if recipient.cc or recipient.bcc:
			notes.append(f"Recipient {index}: CC and BCC: realtime messages go to users, not to addresses")
	if source.send_to_all_assignees:
		rows.append({"audience_type": "Assignees"})
	if not rows:
		rows.append({"audience_type": "Owner"})
		notes.append(
			"No recipient could be carried over: the audience is the document's owner; change it before enabling"
		)
	return rows, notes


def _user_field(field: str) -> str:
	"""Notification writes a child table's field as `field,table`; a rule as `table.field`."""
	name, _comma, table = field.partition(",")
	return f"{table.strip()}.{name.strip()}" if table else name


def _holds_users(meta, path: str) -> bool:
	table, field = split_field(path)
	if field is not None:
		table_df = meta.get_field(table)
		meta = frappe.get_meta(table_df.options) if table_df and table_df.options else None
		table = field
	df = meta.get_field(table) if meta else None
	return bool(df and df.fieldtype == "Link" and df.options == "User")


def _differences(source) -> list[str]:
	"""Where the rule behaves differently from the Notification it came from."""
	notes = []
	if source.channel != "System Notification":
		notes.append(f"Channel {source.channel}: the rule shows a message in the desk instead")
	if source.event == SAVE:
		notes.append(
			"Save: a Notification's Save also fires on insert and on submit; the rule's fires on saves of "
			"an existing document only (add New or Submit rules for those)"
		)
	if source.message_type == "Markdown" and source.message:
		notes.append("Message Type Markdown: the rule's message is HTML, Markdown is shown as written")
	texts = f"{source.subject or ''}\n{source.message or ''}"
	if "alert." in texts or "comments" in texts:
		notes.append("The templates use `alert` or `comments`, which a rule's templates do not have")
	if source.is_standard:
		notes.append("Is Standard: the rule is an ordinary rule of this site")
	return notes


def _free_name(name: str) -> str:
	"""The Notification's name, or with a number added when a rule already has it."""
	candidate, number = name, 1
	while frappe.db.exists(RULE_DOCTYPE, candidate):
		number += 1
		candidate = f"{name} ({number})"
	return candidate


def _valid(data: dict) -> tuple[dict, list[str]]:
	"""The rule without a condition the rule's sandbox refuses (the conversion says so); any
	other problem stops the conversion with every problem listed."""
	dropped = []
	problems = frappe.get_doc(data).collect_problems()
	for problem in problems:
		if problem.field == "condition":
			data["condition"] = ""
			dropped.append(f"Condition, not carried: {problem.problem}")
		elif problem.field.startswith("audience row ") and problem.field.endswith(": condition"):
			row = int(problem.field.split()[2].rstrip(":")) - 1
			data["audience"][row].pop("condition", None)
			dropped.append(
				f"Recipient condition of {problem.field.split(':')[0]}, not carried: {problem.problem}"
			)
	if dropped:
		problems = frappe.get_doc(data).collect_problems()
	if problems:
		_refuse(data, problems)
	return data, dropped


def _refuse(data: dict, problems: list[Problem]) -> None:
	throw_problems(problems, _("The Notification cannot become a Realtime Rule:"), _("Not converted"))
