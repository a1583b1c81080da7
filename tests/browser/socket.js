// Helpers of the socket-level tests (replay_socket.js, replay_room.js): a plain socket.io client
// logged in by a session cookie, as a desk connects, and waiting for what it receives.
// Needs socket.io-client on NODE_PATH (or SOCKET_IO_CLIENT naming it).
"use strict";

const { io } = require(process.env.SOCKET_IO_CLIENT || "socket.io-client");
const { BASE, arg } = require("./lib");

const SOCKET = arg("socket", "http://127.0.0.1:9000");
const SITE = arg("site", "rt.localhost");
const WAIT_MS = 10000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A socket of the site's namespace, connected with the session `sid` (no reconnection). */
function connect(sid) {
	return new Promise((resolve, reject) => {
		const socket = io(`${SOCKET}/${SITE}`, {
			transports: ["websocket"],
			reconnection: false,
			extraHeaders: { Cookie: `sid=${sid}`, Origin: BASE },
		});
		socket.once("connect", () => resolve(socket));
		socket.once("connect_error", (e) => reject(new Error(`socket.io: ${e.message}`)));
	});
}

/** Wait until `predicate()` holds, at most `ms`; returns its last value. */
async function waitFor(predicate, ms = WAIT_MS) {
	const until = Date.now() + ms;
	while (!predicate() && Date.now() < until) await sleep(50);
	return predicate();
}

module.exports = { SITE, SOCKET, WAIT_MS, connect, sleep, waitFor };
