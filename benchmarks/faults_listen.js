// Desks for benchmarks/faults.py: one socket.io client per user, doing what the desk runtime
// (rt_studio/public/js/rt_studio.bundle.js) does with RT Studio's messages and nothing more:
// - each message is shown once per `seq`, decided by the runtime's own SeqTracker (logic.js);
// - on every reconnect of the socket, and when a gap in the numbers stays open GAP_MS, it asks
//   rt_studio.api.missed(since) and shows what it had not;
// - socket.io's own reconnection, then a retry every few seconds (the runtime's reconnectDelay).
// Config in the environment: FAULTS_LISTEN = {"base", "socket", "site", "events": [socket event names],
// "users": [{"user", "password"}]}.
// Prints one JSON line per thing that happened: {"type": "ready" | "shown" | "connect" | "disconnect"
// | "error", "user", "t" (ms since the epoch), and for "shown": "via" (live | missed), "seq", "source"
// (the rule, or the channel of a post), "about" (the document, or the post's text), "event"}. Reads commands on stdin: "finish" prints {"type": "done"} and exits.
// Needs socket.io-client on NODE_PATH (or SOCKET_IO_CLIENT naming it).
"use strict";

const path = require("path");
const readline = require("readline");
const { io } = require(process.env.SOCKET_IO_CLIENT || "socket.io-client");

const config = JSON.parse(process.env.FAULTS_LISTEN);
const out = (record) => process.stdout.write(`${JSON.stringify({ t: Date.now(), ...record })}\n`);

async function login(user, password) {
	const res = await fetch(`${config.base}/api/method/login`, {
		method: "POST",
		headers: { "Content-Type": "application/json", Accept: "application/json" },
		body: JSON.stringify({ usr: user, pwd: password }),
	});
	const cookies = res.headers.getSetCookie();
	const sid = cookies.map((c) => /(?:^|;\s*)sid=([^;]*)/.exec(c)).find((m) => m && m[1] && m[1] !== "Guest");
	if (!res.ok || !sid) throw new Error(`login as ${user}: HTTP ${res.status}`);
	return sid[1];
}

class Desk {
	constructor(user, sid, SeqTracker, reconnectDelay) {
		this.user = user;
		this.sid = sid;
		this.reconnectDelay = reconnectDelay;
		this.attempts = 0;
		this.seq = new SeqTracker(0);
		this.fetching = false;
		this.fetchAgain = false;
		this.connectedOnce = false;
	}

	async call(method, args) {
		const res = await fetch(`${config.base}/api/method/${method}`, {
			method: "POST",
			headers: { "Content-Type": "application/json", Accept: "application/json", Cookie: `sid=${this.sid}` },
			body: JSON.stringify(args),
		});
		if (!res.ok) throw new Error(`${method}: HTTP ${res.status}`);
		return (await res.json()).message;
	}

	/** The page's boot: the user's current seq (the desk gets it in frappe.boot.rt_studio.seq). */
	async boot() {
		const kept = await this.call("rt_studio.api.missed", { since: 0 });
		this.seq = new this.seq.constructor(Math.max(0, ...kept.map((m) => Number(m.seq) || 0)));
	}

	start() {
		// Frappe's desk client: socket.io's reconnection, 3 attempts, then the runtime's own retries
		this.socket = io(`${config.socket}/${config.site}`, {
			transports: ["websocket"],
			reconnectionAttempts: 3,
			extraHeaders: { Cookie: `sid=${this.sid}`, Origin: config.base },
		});
		this.socket.on("connect", () => {
			this.attempts = 0;
			out({ type: "connect", user: this.user });
			if (this.connectedOnce) this.catchUp();
			else out({ type: "ready", user: this.user });
			this.connectedOnce = true;
		});
		this.socket.on("disconnect", (reason) => out({ type: "disconnect", user: this.user, reason }));
		this.socket.io.on("reconnect_failed", () => {
			clearTimeout(this.timer);
			this.timer = setTimeout(() => this.socket.connect(), this.reconnectDelay(this.attempts++));
		});
		this.socket.on("connect_error", () => {
			if (!this.socket.active) {
				clearTimeout(this.timer);
				this.timer = setTimeout(() => this.socket.connect(), this.reconnectDelay(this.attempts++));
			}
		});
		// the desk listens to every rule's and channel's event name (frappe.boot.rt_studio.events)
		for (const event of config.events) this.socket.on(event, (message) => this.receive(message, "live"));
	}

	receive(message, via) {
		if (!message || typeof message !== "object" || message.room) return;
		if (!this.seq.accept(message.seq)) return;
		this.show(message, via);
		if (this.seq.hasGap() && !this.gapTimer) {
			// a number below this one is missing: ask missed() unless it comes within GAP_MS
			this.gapTimer = setTimeout(() => {
				this.gapTimer = null;
				if (this.seq.hasGap()) this.catchUp();
			}, this.gapMs);
		}
	}

	show(message, via) {
		const { seq, rule, channel, docname, event } = message;
		// a message is a rule's about a document, or a channel's post (told apart by its text)
		const about = docname || message.message;
		out({ type: "shown", user: this.user, via, seq, source: rule || channel, about, event });
	}

	async catchUp() {
		if (this.fetching) {
			this.fetchAgain = true;
			return;
		}
		this.fetching = true;
		try {
			const messages = await this.call("rt_studio.api.missed", { since: this.seq.since() });
			for (const message of this.seq.caughtUp(messages)) this.show(message, "missed");
		} catch (e) {
			out({ type: "error", user: this.user, error: `missed: ${e.message}` });
		} finally {
			this.fetching = false;
			if (this.fetchAgain) {
				this.fetchAgain = false;
				this.catchUp();
			}
		}
	}
}

async function main() {
	const logic = await import(path.join(__dirname, "..", "rt_studio", "public", "js", "runtime", "logic.js"));
	const desks = [];
	for (const { user, password } of config.users) {
		const desk = new Desk(user, await login(user, password), logic.SeqTracker, logic.reconnectDelay);
		desk.gapMs = logic.GAP_MS;
		await desk.boot();
		desk.start();
		desks.push(desk);
	}
	readline.createInterface({ input: process.stdin }).on("line", (line) => {
		if (line.trim() === "finish") {
			for (const desk of desks) desk.socket.close();
			out({ type: "done" });
			process.exit(0);
		}
	});
}

main().catch((e) => {
	out({ type: "error", error: String(e && e.stack ? e.stack : e) });
	process.exit(1);
});
