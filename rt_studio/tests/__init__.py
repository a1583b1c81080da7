"""Frappe integration tests for RT Studio (`bench --site SITE run-tests --app rt_studio`)."""

try:  # Frappe v16 renames the base class
	from frappe.tests import IntegrationTestCase
except ImportError:  # Frappe v15
	from frappe.tests.utils import FrappeTestCase as IntegrationTestCase

__all__ = ["IntegrationTestCase"]
