"""Makes a dev/bench-up site ready to try RT Studio: the setup wizard completed, a System
Manager, two ordinary desk users and one demo rule on ToDo. Safe to run again: it resets the
users' passwords and roles and the demo rule, and touches nothing else.

Run with the bench's Python from its sites folder; the passwords come from the environment:
	RT_MANAGER_PASSWORD=... RT_USER_PASSWORD=... ../env/bin/python dev/demo_site.py SITE
"""

import os
import sys

import frappe

MANAGER = "manager@example.com"
USERS = ("alice@example.com", "bob@example.com")
#: a role with desk access and no permissions of its own: what makes alice and bob desk users
DEMO_ROLE = "RT Studio Demo User"
DEMO_RULE = "Demo: new ToDo"


def complete_setup_wizard() -> None:
	"""Run Frappe's own setup wizard (once), with the System Manager as its first user."""
	from frappe.desk.page.setup_wizard.setup_wizard import setup_complete

	setup_complete(  # returns at once on a site whose wizard is done
		{
			"language": "English",
			"country": "United States",
			"timezone": "UTC",
			"currency": "USD",
			"full_name": "Demo Manager",
			"email": MANAGER,
			"password": os.environ["RT_MANAGER_PASSWORD"],
		}
	)


def ensure_user(email: str, first_name: str, roles: list[str], password: str) -> None:
	user = frappe.get_doc("User", email) if frappe.db.exists("User", email) else frappe.new_doc("User")
	user.update({"email": email, "first_name": first_name, "enabled": 1, "send_welcome_email": 0})
	user.flags.no_welcome_mail = True
	user.set("roles", [])
	user.append_roles(*roles)
	user.save(ignore_permissions=True)
	from frappe.utils.password import update_password

	update_password(email, password)


def ensure_demo_rule() -> None:
	"""ToDo, New: an alert to the user who made the ToDo (the actor is not excluded). Not for
	Administrator's ToDos: the browser tests make theirs as Administrator and count alerts."""
	if frappe.db.exists("Realtime Rule", DEMO_RULE):
		frappe.delete_doc("Realtime Rule", DEMO_RULE, ignore_permissions=True, force=True)
	frappe.get_doc(
		{
			"doctype": "Realtime Rule",
			"rule_name": DEMO_RULE,
			"enabled": 1,
			"document_type": "ToDo",
			"event": "New",
			"audience": [{"audience_type": "Owner"}],
			"condition": 'doc.owner != "Administrator"',
			"exclude_actor": 0,
			"subject": "New ToDo: {{ doc.description | striptags | truncate(80) }}",
			"message": "Priority {{ doc.priority }}{% if doc.date %}, due {{ doc.date }}{% endif %}.",
			"display": "Alert",
			"indicator": "green",
			"alert_seconds": 10,
		}
	).insert(ignore_permissions=True)


def main(site: str) -> None:
	frappe.init(site=site, sites_path=".")
	frappe.connect()
	try:
		frappe.set_user("Administrator")
		complete_setup_wizard()
		if not frappe.db.exists("Role", DEMO_ROLE):
			frappe.get_doc({"doctype": "Role", "role_name": DEMO_ROLE, "desk_access": 1}).insert(
				ignore_permissions=True
			)
		ensure_user(MANAGER, "Demo Manager", ["System Manager"], os.environ["RT_MANAGER_PASSWORD"])
		for email in USERS:
			ensure_user(email, email.split("@")[0].title(), [DEMO_ROLE], os.environ["RT_USER_PASSWORD"])
		ensure_demo_rule()
		frappe.db.commit()
	finally:
		frappe.destroy()


if __name__ == "__main__":
	main(sys.argv[1])
