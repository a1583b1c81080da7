// Preloaded into Frappe's socket.io server by dev/bench-up (node --require): the server calls
// listen(port), which binds every interface; this makes such a call bind 127.0.0.1 only.
"use strict";
const net = require("net");

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
	if (typeof args[0] === "number" && (args.length === 1 || typeof args[1] === "function")) {
		args.splice(1, 0, "127.0.0.1");
	}
	return listen.apply(this, args);
};
