// End-to-end latency of RT Studio deliveries through Frappe's own socket.io server.
//
// Run (socket.io-client lives outside the repo, e.g. `npm install --prefix /tmp/rtnode socket.io-client@4`):
//
//     NODE_PATH=/tmp/rtnode/node_modules node benchmarks/socket_latency.js
//
// (or SOCKET_IO_CLIENT=/path/to/node_modules/socket.io-client instead of NODE_PATH).
// Environment, all optional: BASE_URL (web server, default http://127.0.0.1:8000), SOCKET_URL
// (socket.io server, default http://127.0.0.1:9000), SITE (default rt.localhost), ADMIN_USER /
// ADMIN_PASSWORD (default Administrator / admin), N (ToDos, default 20), TIMEOUT_MS (wait per
// message, default 3000), CONTROL (ToDos the viewer may not read, default 3).
//
// What it does, idempotently, all over HTTP as the desk would:
//  1. as Administrator: makes sure the Role "RT Viewer" (desk access, no DocPerm at all) and the
//     System User rt.viewer@example.com with only that role exist, and (re)creates the Realtime
//     Rule "rt-bench-socket": ToDo, New, condition on the description, audience User
//     rt.viewer@example.com. The viewer may read a ToDo only through Frappe's ordinary rules:
//     role "All" has read on ToDo and ToDo's has_permission lets the user read ToDos allocated to
//     them, so each ToDo is created with allocated_to = the viewer;
//  2. logs the viewer in (POST /api/method/login -> sid cookie) and connects socket.io to
//     SOCKET_URL/SITE with that cookie and Origin = BASE_URL (Frappe's socket server checks that
//     Origin and Host name the same host, then asks BASE_URL/api/method/frappe.realtime.get_user_info
//     who the sid belongs to, and joins the socket to the room user:<user>);
//  3. as Administrator creates N ToDos one after another (POST /api/resource/ToDo; the request
//     commits before it responds, and RT Studio publishes after the commit) and, for each, times
//     the `rt_studio` message carrying its docname against the HTTP response (and the request start);
//  4. deletes the ToDos (control ones too) and the rule it created, and disables the viewer (the role and the
//     disabled user stay; the next run enables it again with a new random password), also after a failure.
//  5. control: CONTROL more ToDos that match the rule but are allocated to Administrator, which
//     the viewer may not read; none of their messages may reach the viewer.
// It prints min / median / max in ms and how many of the N messages arrived. It never asserts on
// the numbers; it exits 1 only when setup, login or the socket connection fails.

"use strict";

const BASE_URL = (process.env.BASE_URL || "http://127.0.0.1:8000").replace(/\/$/, "");
const SOCKET_URL = (process.env.SOCKET_URL || "http://127.0.0.1:9000").replace(/\/$/, "");
const SITE = process.env.SITE || "rt.localhost";
const ADMIN_USER = process.env.ADMIN_USER || "Administrator";
const ADMIN_PASSWORD = process.env.ADMIN_PASSWORD || "admin";
const N = parseInt(process.env.N || "20", 10);
const TIMEOUT_MS = parseInt(process.env.TIMEOUT_MS || "3000", 10);
const CONTROL = parseInt(process.env.CONTROL || "3", 10);

const VIEWER = "rt.viewer@example.com";
// a new password every run, and the viewer is disabled at the end: no known login stays open
const VIEWER_PASSWORD = `${require("crypto").randomBytes(18).toString("base64")}!a1A`;
const VIEWER_ROLE = "RT Viewer";
const RULE = "rt-bench-socket";
const MARK = "rt socket bench";

const { io } = require(process.env.SOCKET_IO_CLIENT || "socket.io-client");

const now = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class Session {
	constructor(label) {
		this.label = label;
		this.sid = null;
	}

	async login(user, password) {
		const res = await fetch(`${BASE_URL}/api/method/login`, {
			method: "POST",
			headers: { "Content-Type": "application/json", Accept: "application/json" },
			body: JSON.stringify({ usr: user, pwd: password }),
		});
		const cookies = res.headers.getSetCookie ? res.headers.getSetCookie() : [res.headers.get("set-cookie")];
		const sid = cookies.map((c) => /(?:^|;\s*)sid=([^;]*)/.exec(c || "")).find((m) => m && m[1] && m[1] !== "Guest");
		if (!res.ok || !sid) {
			throw new Error(`${this.label}: login as ${user} failed: HTTP ${res.status} ${await res.text()}`);
		}
		this.sid = sid[1];
		return this;
	}

	async call(method, path, body) {
		const res = await fetch(`${BASE_URL}${path}`, {
			method,
			headers: {
				"Content-Type": "application/json",
				Accept: "application/json",
				Cookie: `sid=${this.sid}`,
			},
			body: body === undefined ? undefined : JSON.stringify(body),
		});
		const text = await res.text();
		let data = null;
		try {
			data = JSON.parse(text);
		} catch (e) {
			data = { raw: text };
		}
		return { status: res.status, ok: res.ok, data };
	}

	async must(method, path, body) {
		const r = await this.call(method, path, body);
		if (!r.ok) {
			const why = r.data && (r.data.exception || r.data._server_messages || r.data.raw || JSON.stringify(r.data));
			throw new Error(`${this.label}: ${method} ${path} -> HTTP ${r.status}: ${String(why).slice(0, 400)}`);
		}
		return r.data;
	}
}

const resource = (doctype, name) =>
	`/api/resource/${encodeURIComponent(doctype)}` + (name ? `/${encodeURIComponent(name)}` : "");

async function setup(admin) {
	if ((await admin.call("GET", resource("Role", VIEWER_ROLE))).status === 404) {
		await admin.must("POST", resource("Role"), { role_name: VIEWER_ROLE, desk_access: 1 });
	}
	const user = {
		email: VIEWER,
		first_name: "RT Viewer",
		enabled: 1,
		user_type: "System User",
		send_welcome_email: 0,
		new_password: VIEWER_PASSWORD,
		roles: [{ role: VIEWER_ROLE }],
	};
	if ((await admin.call("GET", resource("User", VIEWER))).status === 404) {
		await admin.must("POST", resource("User"), user);
	} else {
		await admin.must("PUT", resource("User", VIEWER), user);
	}
	const rule = {
		rule_name: RULE,
		enabled: 1,
		document_type: "ToDo",
		event: "New",
		condition: `'${MARK}' in (doc.description or '')`,
		audience: [{ audience_type: "User", user: VIEWER }],
		exclude_actor: 1,
		subject: "{{ doc.description }}",
		message: "ToDo {{ doc.name }} for {{ doc.allocated_to }}",
		display: "Alert",
		indicator: "blue",
		rate_limit_count: 0,
	};
	if ((await admin.call("GET", resource("Realtime Rule", RULE))).status !== 404) {
		await admin.must("DELETE", resource("Realtime Rule", RULE));
	}
	await admin.must("POST", resource("Realtime Rule"), rule);
}

function connectSocket(sid) {
	return new Promise((resolve, reject) => {
		const socket = io(`${SOCKET_URL}/${SITE}`, {
			path: "/socket.io",
			transports: ["websocket"],
			reconnection: false,
			timeout: 10000,
			extraHeaders: { Cookie: `sid=${sid}`, Origin: BASE_URL },
		});
		socket.once("connect", () => resolve(socket));
		socket.once("connect_error", (err) => reject(new Error(`socket.io connect failed: ${err.message}`)));
	});
}

function stats(values) {
	if (!values.length) return "n/a";
	const s = [...values].sort((a, b) => a - b);
	const mid = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
	return `min ${s[0].toFixed(1)} / median ${mid.toFixed(1)} / max ${s[s.length - 1].toFixed(1)} ms`;
}

async function main() {
	console.log(`RT Studio socket latency: web ${BASE_URL}, socket.io ${SOCKET_URL}/${SITE}, N=${N}`);
	const admin = await new Session("Administrator").login(ADMIN_USER, ADMIN_PASSWORD);
	let t = now();
	await setup(admin);
	console.log(`setup (role, user ${VIEWER}, rule ${RULE}): ${(now() - t).toFixed(0)} ms`);

	try {
		await measure(admin);
	} finally {
		await admin.call("DELETE", resource("Realtime Rule", RULE));
		await admin.call("PUT", resource("User", VIEWER), { enabled: 0 });
		console.log(`cleaned up: rule ${RULE} deleted, ${VIEWER} disabled`);
	}
}

async function measure(admin) {
	const viewer = await new Session("viewer").login(VIEWER, VIEWER_PASSWORD);
	const t = now();
	const socket = await connectSocket(viewer.sid);
	console.log(`viewer logged in; socket.io connected in ${(now() - t).toFixed(0)} ms (id ${socket.id})`);

	const received = new Map(); // docname -> {at, message}
	let foreign = 0;
	socket.on("rt_studio", (message) => {
		const at = now();
		if (message && message.rule === RULE && message.docname) {
			received.set(message.docname, { at, message });
		} else {
			foreign += 1;
		}
	});

	const runId = Math.random().toString(36).slice(2, 8);
	const created = [];
	const afterResponse = [];
	const afterRequest = [];
	let first = null;
	for (let i = 0; i < N; i++) {
		const start = now();
		const data = await admin.must("POST", resource("ToDo"), {
			description: `${MARK} ${runId} ${i}`,
			allocated_to: VIEWER,
			priority: "Medium",
		});
		const responded = now();
		const name = data.data.name;
		created.push(name);
		while (!received.has(name) && now() - responded < TIMEOUT_MS) {
			await sleep(2);
		}
		const got = received.get(name);
		if (got) {
			afterResponse.push(got.at - responded);
			afterRequest.push(got.at - start);
			first = first || got.message;
		}
		console.log(
			`  ${String(i + 1).padStart(2)} ${name}: request ${(responded - start).toFixed(1)} ms, ` +
				(got
					? `message ${(got.at - responded).toFixed(1)} ms after the response`
					: `no message within ${TIMEOUT_MS} ms`)
		);
	}

	console.log(`received ${afterResponse.length} of ${N}`);
	console.log(`latency after the HTTP response: ${stats(afterResponse)}`);
	console.log(`latency after the request started: ${stats(afterRequest)}`);
	if (foreign) console.log(`(${foreign} other rt_studio messages reached the viewer)`);
	if (first) console.log(`first message: ${JSON.stringify(first)}`);

	// Control: ToDos the viewer may not read (allocated to Administrator) must not reach it.
	const control = [];
	for (let i = 0; i < CONTROL; i++) {
		const data = await admin.must("POST", resource("ToDo"), {
			description: `${MARK} ${runId} control ${i}`,
			allocated_to: ADMIN_USER,
		});
		control.push(data.data.name);
		created.push(data.data.name);
	}
	await sleep(CONTROL ? TIMEOUT_MS : 0);
	const leaked = control.filter((name) => received.has(name)).length;
	if (CONTROL) {
		console.log(`control: ${leaked} of ${CONTROL} messages about ToDos the viewer cannot read reached it (expected 0)`);
	}

	socket.close();
	for (const name of created) {
		await admin.call("DELETE", resource("ToDo", name));
	}
	console.log(`cleaned up: ${created.length} ToDos deleted`);
}

main().catch((err) => {
	console.error(`error: ${err.message}`);
	process.exitCode = 1;
});
