"""App-shipped ("standard") Realtime Rules, as Frappe's Notification has them.

An app ships a rule as `<module folder>/realtime_rule/<rule>/<rule>.json`. In developer mode,
saving a rule marked Is Standard writes that file (`export_module_json`, as Notification does).
`bench migrate`, and the install of any app, import the files of every installed app: Frappe's
own sync reads only its fixed list of DocTypes (Notification is on it, Realtime Rule cannot
be), so RT Studio's `after_migrate` and `after_app_install` hooks do the same for rules, with
Frappe's importer (a file is imported when it is newer than the rule on the site).

On a site a standard rule belongs to its app: outside developer mode an admin may enable or
disable it, and that choice survives the app's updates, but may neither change nor delete it
(the next migrate would bring back what they changed; they can duplicate it instead).
"""

import os

import frappe
from frappe import _
from frappe.modules import scrub
from frappe.modules.import_file import import_file_by_path
from frappe.modules.utils import export_module_json

RULE_DOCTYPE = "Realtime Rule"
#: The folder of a module that holds its app's rules, as `notification` holds Notifications.
FOLDER = scrub(RULE_DOCTYPE)
#: What a site may change on a standard rule outside developer mode.
SITE_SETTINGS = ("enabled",)
#: What a save changes without the admin asking: never a change to the rule itself.
BOOKKEEPING = ("modified", "last_error", "last_error_on")


def after_migrate() -> None:
	sync()


def after_app_install(app: str) -> None:
	"""Frappe calls this when any app is installed: import the rules that app ships."""
	sync([app])


def sync(apps: list[str] | None = None) -> list[str]:
	"""Import the rule files of the given apps (default: every installed app), newer ones only.

	Returns the names of the rules imported. A rule with problems is imported all the same
	(as Frappe imports every shipped document) and each problem is printed: the rule then
	records its error when it runs, and never breaks a save.
	"""
	imported = []

	def keep_site_settings(doc) -> None:
		"""Importing a newer file replaces the rule; the site keeps whether it is enabled."""
		current = frappe.db.get_value(RULE_DOCTYPE, doc.name, list(SITE_SETTINGS), as_dict=True)
		if current:
			doc.update(current)
		imported.append(doc.name)

	for app in apps or frappe.get_installed_apps():
		for path in rule_files(app):
			import_file_by_path(path, pre_process=keep_site_settings)
	for name in imported:
		for problem in frappe.get_doc(RULE_DOCTYPE, name).collect_problems():
			print(f"Realtime Rule {name}: {problem.field}: {problem.problem}")
	return imported


def rule_files(app: str) -> list[str]:
	"""The rule files an app ships, in module order then by name."""
	files = []
	for module in frappe.get_module_list(app):
		folder = frappe.get_app_path(app, scrub(module), FOLDER)
		if not os.path.isdir(folder):
			continue
		for name in sorted(os.listdir(folder)):
			path = os.path.join(folder, name, f"{name}.json")
			if os.path.isfile(path):
				files.append(path)
	return files


# --- the controller's part -----------------------------------------------------------------


def developer_mode() -> bool:
	return bool(frappe.conf.developer_mode)


def shipping() -> bool:
	"""Frappe is installing, migrating, importing or removing apps: the app decides, not the admin."""
	flags = frappe.flags
	return bool(flags.in_import or flags.in_migrate or flags.in_install or flags.in_uninstall)


def validate(doc) -> None:
	"""Outside developer mode a standard rule can only be enabled or disabled."""
	if developer_mode() or shipping():
		return
	before = doc.get_doc_before_save()
	if doc.is_new() or not before:
		if doc.is_standard:
			frappe.throw(
				_(
					"Rule {0}: Is Standard is for rules an app ships: turn on developer mode to make one"
				).format(frappe.bold(doc.rule_name)),
				title=_("Standard Realtime Rule"),
			)
		return
	if not (doc.is_standard or before.is_standard):
		return
	changed = changed_fields(before, doc)
	if changed:
		frappe.throw(
			_(
				"Rule {0} is shipped by module {1}: on this site it can only be enabled or disabled"
				" ({2} changed). Duplicate it to make a rule of your own."
			).format(frappe.bold(doc.rule_name), frappe.bold(before.module), ", ".join(changed)),
			title=_("Standard Realtime Rule"),
		)


def changed_fields(before, after) -> list[str]:
	"""Fields (child tables as one field each) that differ, except what a site may change."""
	from rt_studio.files.rule_files import fixture_dict

	ignored = (*SITE_SETTINGS, *BOOKKEEPING)
	old, new = fixture_dict(before), fixture_dict(after)
	return sorted(key for key in set(old) | set(new) if key not in ignored and old.get(key) != new.get(key))


def export(doc) -> None:
	"""In developer mode, write a standard rule into its module's folder (as Notification)."""
	export_module_json(doc, doc.is_standard, doc.module)


def before_export(export: dict) -> None:
	"""The shipped file says what the rule is, not what happened to it on this site."""
	for field in BOOKKEEPING[1:]:
		export.pop(field, None)


def on_trash(doc) -> None:
	if doc.is_standard and not developer_mode() and not shipping():
		frappe.throw(
			_(
				"Rule {0} is shipped by module {1}: disable it instead (the next migrate would restore it)"
			).format(frappe.bold(doc.rule_name), frappe.bold(doc.module)),
			title=_("Standard Realtime Rule"),
		)
