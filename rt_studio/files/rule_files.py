"""Rules and channels as files: export as `bench export-fixtures` writes them, check a file as
a whole, and import it all or nothing.

A file comes from anyone (another site, a text editor, a script), so it is read with the
engine's strict reader first, exactly as `rt-studio check` reads it: a value of the wrong
kind, a document of another DocType, a name twice are problems, and only documents that pass
are handed to Frappe (which would raise on a child table given as a string) for the
controllers' own checks and the links. Whatever is wrong comes back as problem lines, never as
a traceback.
"""

import json

import frappe
from frappe import _

from rt_studio.engine.errors import Problem
from rt_studio.engine.fixtures import load_documents
from rt_studio.engine.rules import CHANNEL_DOCTYPE, RULE_DOCTYPE, RUNTIME_FIELDS

#: Keys `bench export-fixtures` drops from a document and from its child rows.
FIXTURE_DROP = ("modified_by", "creation", "owner", "idx", "lft", "rgt")
FIXTURE_DROP_CHILD = (*FIXTURE_DROP, "docstatus", "doctype", "modified", "name")
#: Imports larger than this run in a background job with a progress bar.
BACKGROUND_IMPORT_AT = 20


def export(names: list[str] | None) -> list[dict]:
	"""Rules (and the channels they name) in the format `bench export-fixtures` writes."""
	filters = {"name": ["in", names]} if names else None
	rule_names = frappe.get_all(RULE_DOCTYPE, filters=filters, pluck="name", order_by="name")
	rules = [fixture_dict(frappe.get_doc(RULE_DOCTYPE, name)) for name in rule_names]
	channel_names = sorted(
		{row["channel"] for rule in rules for row in rule["audience"] if row.get("channel")}
	)
	channels = [
		fixture_dict(frappe.get_doc(CHANNEL_DOCTYPE, name))
		for name in channel_names
		if frappe.db.exists(CHANNEL_DOCTYPE, name)
	]
	return channels + rules


def fixture_dict(doc) -> dict:
	"""A document as export-fixtures writes it (same keys dropped), without runtime state."""
	data = json.loads(frappe.as_json(doc.as_dict()))
	for key in (*FIXTURE_DROP, *RUNTIME_FIELDS):
		data.pop(key, None)
	for value in data.values():
		if isinstance(value, list):
			for child in value:
				for key in FIXTURE_DROP_CHILD:
					child.pop(key, None)
	return data


def read_documents(data) -> list:
	"""The list of documents in `data` (JSON text or already parsed); a clear error otherwise."""
	if isinstance(data, str):
		try:
			data = json.loads(data.lstrip("\ufeff"))  # a byte order mark, as Windows editors write
		except ValueError as e:
			frappe.throw(_("Not valid JSON: {0}").format(e))
		except RecursionError:
			frappe.throw(_("Not valid JSON: nested too deeply to read"))
	if isinstance(data, dict):
		data = [data]
	if not isinstance(data, list):
		frappe.throw(_("Expected a list of Realtime Rule / Realtime Channel documents"))
	if not data:
		frappe.throw(_("The file contains no Realtime Rule or Realtime Channel documents"))
	return data


def problems_of(documents: list) -> list[Problem]:
	"""Every problem of every document: the engine's strict reading first, then, for the
	documents it accepts, the controllers' own checks and the links, without saving any."""
	fixture = load_documents(documents)
	problems = list(fixture.problems)
	accepted = {(RULE_DOCTYPE, rule.name) for rule in fixture.rules}
	accepted |= {(CHANNEL_DOCTYPE, channel.name) for channel in fixture.channels}
	for data in documents:
		if isinstance(data, dict) and (data.get("doctype"), _name(data)) in accepted:
			problems += _site_problems(data, accepted)
	return problems


def _site_problems(data: dict, incoming: set) -> list[Problem]:
	label = _name(data)
	try:
		doc = frappe.get_doc(clean(data))
		problems = doc.collect_problems()
	except Exception as e:  # Frappe's own reading of a document we accepted: say what it said
		return [Problem(label, "", f"cannot be read: {frappe.utils.strip_html(str(e))}")]
	if doc.doctype == RULE_DOCTYPE and not frappe.db.exists("DocType", doc.document_type or ""):
		return problems
	for fieldname, value, field_label in _missing_links(doc):
		if fieldname != "channel" or (CHANNEL_DOCTYPE, value) not in incoming:
			problems.append(
				Problem(label, frappe.utils.strip_html(field_label), "does not exist on this site")
			)
	return problems


def rule_problems(data: dict) -> list[Problem]:
	"""Problems of one rule as a form holds it (the live check while editing)."""
	data = {k: v for k, v in data.items() if not k.startswith("__")}
	data["doctype"] = RULE_DOCTYPE
	fixture = load_documents([data])
	if fixture.problems:
		return fixture.problems
	try:
		return frappe.get_doc(clean(data)).collect_problems()
	except Exception as e:
		return [Problem(_name(data), "", f"cannot be read: {frappe.utils.strip_html(str(e))}")]


def _name(data: dict) -> str:
	name = data.get("rule_name") or data.get("channel_name") or data.get("name") or ""
	return name.strip() if isinstance(name, str) else ""


def _missing_links(doc) -> list[tuple]:
	invalid, _cancelled = doc.get_invalid_links()
	for child in doc.get_all_children():
		invalid.extend(child.get_invalid_links()[0])
	return invalid


def clean(data: dict) -> dict:
	"""A document without the keys a site sets itself, ready for `frappe.get_doc`; filters
	written by hand as a list become JSON text, as the form stores them."""
	cleaned = {
		k: v
		for k, v in data.items()
		if k not in ("modified", "creation", "modified_by", "owner", *RUNTIME_FIELDS)
	}
	if isinstance(cleaned.get("filters"), list | dict):
		cleaned["filters"] = json.dumps(cleaned["filters"])
	return cleaned


def import_all(documents: list[dict], progress: bool = False) -> list[str]:
	"""Write every document (already checked), channels first; nothing at all if one fails."""
	savepoint = "rt_studio_import"
	frappe.db.savepoint(savepoint)
	written = []
	try:
		# channels first: rules link to them
		for doc in sorted(documents, key=lambda d: d.get("doctype") != CHANNEL_DOCTYPE):
			written.append(_upsert(doc))
			if progress:
				frappe.publish_progress(len(written) * 100 / len(documents), title=_("Importing rules"))
	except Exception as e:
		frappe.db.rollback(save_point=savepoint)
		frappe.clear_messages()
		frappe.throw(_("Nothing imported: {0}").format(frappe.utils.escape_html(str(e))))
	return written


def import_job(documents: list[dict]) -> None:
	"""Background import of a large file (already validated), with a progress bar."""
	try:
		names = import_all(documents, progress=True)
	except Exception as e:
		frappe.db.rollback()
		frappe.publish_realtime(
			"msgprint",
			_("Nothing imported: {0}").format(frappe.utils.escape_html(str(e))),
			user=frappe.session.user,
		)
		return
	frappe.db.commit()
	frappe.publish_realtime(
		"msgprint", _("Imported {0} rule(s) and channel(s).").format(len(names)), user=frappe.session.user
	)


def _upsert(data: dict) -> str:
	data = clean(data)
	name = _name(data)
	if frappe.db.exists(data["doctype"], name):
		doc = frappe.get_doc(data["doctype"], name)
		for table in ("audience", "members", "publish_roles"):
			if table in data:
				doc.set(table, [])
		doc.update(data)
		doc.save()
	else:
		doc = frappe.get_doc(data).insert()
	return doc.name
