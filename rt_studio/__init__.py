"""RT Studio: no-code realtime notifications for Frappe (see README.md)."""

__version__ = "0.1.0"
