"""The web server of a dev/bench-up bench: Frappe's WSGI app with /assets and /files served,
as `bench serve` does, under gunicorn bound to loopback (`bench serve` listens on every
interface). A Host that names no site folder (127.0.0.1, localhost) is served by the site in
RT_DEFAULT_SITE, so the desk and socket.io's login callback work at http://127.0.0.1:PORT too.
"""

import os

import frappe.app

_default_site = os.environ.get("RT_DEFAULT_SITE", "")
_app = frappe.app.application_with_statics()


def application(environ, start_response):
	host = (environ.get("HTTP_HOST") or "").split(":")[0]
	if _default_site and not os.path.isdir(host or "."):
		environ["HTTP_HOST"] = _default_site
	return _app(environ, start_response)
