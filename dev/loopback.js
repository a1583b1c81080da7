// Preloaded into Frappe's socket.io server by dev/bench-up (node --require): the server calls
// listen(port), which binds every interface; this makes such a call bind 127.0.0.1 only, and on
// the port RT_SOCKETIO_LISTEN_PORT when set (a second socket.io server of the same bench, whose
// common_site_config names the first one's port).
"use strict";
const net = require("net");

const listen = net.Server.prototype.listen;
const port = Number(process.env.RT_SOCKETIO_LISTEN_PORT) || null;
net.Server.prototype.listen = function (...args) {
	if (typeof args[0] === "number" && (args.length === 1 || typeof args[1] === "function")) {
		if (port) args[0] = port;
		args.splice(1, 0, "127.0.0.1");
	}
	return listen.apply(this, args);
};
