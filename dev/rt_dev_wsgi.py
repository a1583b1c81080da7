"""The web server of a dev/bench-up bench: Frappe's WSGI app with /assets and /files served,
as `bench serve` does, under gunicorn bound to loopback (`bench serve` listens on every
interface). A Host that names no site folder (127.0.0.1, localhost) is served by the site in
RT_DEFAULT_SITE, so the desk and socket.io's login callback work at http://127.0.0.1:PORT too.
"""

import os

import frappe.app

_default_site = os.environ.get("RT_DEFAULT_SITE", "")
_app = frappe.app.application_with_statics()

# The socket.io port the desks of this web server connect to (frappe.boot.socketio_port, from the
# site's config): a second web server of the bench (RT_NODES=2) sends its desks to the second
# socket.io server.
_desk_socketio_port = os.environ.get("RT_DESK_SOCKETIO_PORT")
if _desk_socketio_port:
	_site_config = frappe.get_site_config

	def _get_site_config(*args, **kwargs):
		config = _site_config(*args, **kwargs)
		config["socketio_port"] = int(_desk_socketio_port)
		return config

	frappe.get_site_config = _get_site_config


def application(environ, start_response):
	host = (environ.get("HTTP_HOST") or "").split(":")[0]
	if _default_site and not os.path.isdir(host or "."):
		environ["HTTP_HOST"] = _default_site
	return _app(environ, start_response)
