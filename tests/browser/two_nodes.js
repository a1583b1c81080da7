#!/usr/bin/env node
/*
 * RT Studio on two of every server (a dev/bench-up bench with RT_NODES=2): web and web2, socketio
 * and socketio2, worker and worker2, one MariaDB and one pair of Redis servers.
 *
 *   NODE_PATH=~/.rt-studio/node/node_modules node tests/browser/two_nodes.js \
 *       --url http://rt.localhost:8000 --url2 http://rt.localhost:8001 \
 *       --socket http://rt.localhost:9000 --socket2 http://rt.localhost:9001 --site rt.localhost \
 *       --password ADMIN_PASSWORD --stop-socketio "dev/proc stop socketio" --start-socketio "dev/proc start socketio"
 *
 * Needs `socket.io-client@4` and `playwright-core` (its HTTP client) on NODE_PATH; no browser.
 * Two desk users (replay_socket.js's user A, and B), each a socket.io client as the desk connects:
 *   1. A on socket.io node 1, B on node 2: a ToDo (A's, shared with B) saved through web node 2
 *      alerts both, once each;
 *   2. a Document Viewers message reaches the viewers on both nodes (the ToDo is A's and shared
 *      with B; both sockets joined its room), once each, with the same room number;
 *   3. node 1 stops; A's desk reconnects to node 2 (as a load balancer sends it) and catches up
 *      through `missed()` and `missed_room()` on what was sent while it had no socket: three alerts
 *      and two room messages, each shown once (the desk runtime's own SeqTracker and RoomSeqs);
 *      nothing arrives twice afterwards. Node 1 is started again at the end.
 * Removes its rules and ToDos. Prints PASS/FAIL per check, exits 1 on a failure.
 */
"use strict";

const path = require("path");
const { execSync } = require("child_process");
const { request } = require("playwright-core");
const { io } = require(process.env.SOCKET_IO_CLIENT || "socket.io-client");
const { BASE, PASSWORD, USER, USER_PASSWORD, arg, check, ensureUser, finish, makeRules, must, resource } = require("./lib");
const { SITE, SOCKET, sleep, waitFor } = require("./socket");

const BASE2 = arg("url2", BASE.replace(/:(\d+)$/, (_m, p) => `:${Number(p) + 1}`));
const SOCKET2 = arg("socket2", SOCKET.replace(/:(\d+)$/, (_m, p) => `:${Number(p) + 1}`));
const STOP = arg("stop-socketio", "");
const START = arg("start-socketio", "");
const USER_B = "rt.replay.b@example.com";
const ALERT = "E2E two nodes alert";
const ROOM_RULE = "E2E two nodes room";

async function sessionAt(base, usr, pwd) {
	const ctx = await request.newContext({ baseURL: base });
	const r = await ctx.post("/api/method/login", { form: { usr, pwd } });
	if (!r.ok()) throw new Error(`login as ${usr} at ${base}: HTTP ${r.status()}`);
	return ctx;
}

const sidOf = async (ctx) => (await ctx.storageState()).cookies.find((c) => c.name === "sid").value;

/** A socket of the site's namespace on one socket.io node, with a session cookie (no reconnection). */
function connectTo(node, sid, origin) {
	return new Promise((resolve, reject) => {
		const socket = io(`${node}/${SITE}`, {
			transports: ["websocket"],
			reconnection: false,
			extraHeaders: { Cookie: `sid=${sid}`, Origin: origin },
		});
		socket.once("connect", () => resolve(socket));
		socket.once("connect_error", (e) => reject(new Error(`socket.io ${node}: ${e.message}`)));
	});
}

async function ensureUserB(admin) {
	const user = { email: USER_B, first_name: "RT Replay B", enabled: 1, send_welcome_email: 0, new_password: USER_PASSWORD, roles: [{ role: "RT Viewer" }] };
	if ((await admin.get(resource("User", USER_B))).status() === 404) await must(await admin.post(resource("User"), { data: user }));
	else await must(await admin.put(resource("User", USER_B), { data: user }));
}

(async () => {
	const { SeqTracker, RoomSeqs, formRoom } = await import(path.join(__dirname, "../../rt_studio/public/js/runtime/logic.js"));
	const admin = await sessionAt(BASE, "Administrator", PASSWORD);
	const admin2 = await sessionAt(BASE2, "Administrator", PASSWORD);
	const sockets = [];
	const todos = [];
	let stopped = false;
	try {
		await ensureUser(admin);
		await ensureUserB(admin);
		await makeRules(admin, {
			[ALERT]: {
				event: "Save",
				condition: "'two-nodes alert' in (doc.description or '')",
				audience: [
					{ audience_type: "User", user: USER },
					{ audience_type: "User", user: USER_B },
				],
			},
			[ROOM_RULE]: {
				event: "Save",
				condition: "'two-nodes room' in (doc.description or '')",
				audience: [{ audience_type: "Document Viewers" }],
			},
		});
		const a = await sessionAt(BASE, USER, USER_PASSWORD);
		const b = await sessionAt(BASE2, USER_B, USER_PASSWORD);
		const [sidA, sidB] = [await sidOf(a), await sidOf(b)];
		const got = { a: [], b: [] };
		const listen = (s, who) => s.on("rt_studio", (m) => m && [ALERT, ROOM_RULE].includes(m.rule) && got[who].push(m));
		const bootSeq = async (ctx) => Math.max(0, ...(await (await ctx.get("/api/method/rt_studio.api.missed?since=0")).json()).message.map((m) => m.seq));
		const seqA = new SeqTracker(await bootSeq(a));
		let socketA = await connectTo(SOCKET, sidA, BASE);
		const socketB = await connectTo(SOCKET2, sidB, BASE2);
		sockets.push(socketA, socketB);
		listen(socketA, "a");
		listen(socketB, "b");

		const share = async (name, user) => {
			const shared = await admin.post("/api/method/frappe.share.add", { form: { doctype: "ToDo", name, user, read: 1 } });
			if (!shared.ok()) throw new Error(`frappe.share.add: HTTP ${shared.status()}`);
		};
		// a ToDo of A's (shared with B when `both`), then saved through web node 2: the alert rule fires
		const alertAbout = async (description, both) => {
			const name = (await must(await admin.post(resource("ToDo"), { data: { description: "two-nodes", allocated_to: USER } }))).name;
			todos.push(name);
			if (both) await share(name, USER_B);
			await must(await admin2.put(resource("ToDo", name), { data: { description } }));
			return name;
		};

		// 1. a save through web node 2 reaches A on node 1 and B on node 2
		const alertTodo = await alertAbout("two-nodes alert 1", true);
		await waitFor(() => got.a.length >= 1 && got.b.length >= 1);
		await sleep(1000);
		const alerts = (who) => got[who].filter((m) => m.rule === ALERT && m.docname === alertTodo);
		check("1. a save through web 2 alerts A on node 1 and B on node 2, once each", alerts("a").length === 1 && alerts("b").length === 1, `A ${alerts("a").length}, B ${alerts("b").length}`);
		for (const m of alerts("a")) seqA.accept(m.seq);

		// 2. Document Viewers on both nodes
		const roomTodo = (await must(await admin.post(resource("ToDo"), { data: { description: "two-nodes room 0", allocated_to: USER } }))).name;
		todos.push(roomTodo);
		await share(roomTodo, USER_B);
		const room = formRoom(["Form", "ToDo", roomTodo]);
		const loadA = await (await a.get(`/api/method/frappe.desk.form.load.getdoc?doctype=ToDo&name=${encodeURIComponent(roomTodo)}`)).json();
		const rooms = new RoomSeqs();
		rooms.open(room, ((loadA.docs || [])[0] || {}).__onload?.rt_studio_room_seq || 0);
		socketA.emit("doc_subscribe", "ToDo", roomTodo);
		socketB.emit("doc_subscribe", "ToDo", roomTodo);
		await sleep(800); // the room is joined after a read check
		await must(await admin.put(resource("ToDo", roomTodo), { data: { description: "two-nodes room 1" } }));
		await waitFor(() => got.a.some((m) => m.rule === ROOM_RULE) && got.b.some((m) => m.rule === ROOM_RULE));
		await sleep(1000);
		const roomMessages = (who) => got[who].filter((m) => m.rule === ROOM_RULE);
		const [ra, rb] = [roomMessages("a"), roomMessages("b")];
		check(
			"2. a Document Viewers message reaches the viewers on both nodes, once each, same room number",
			ra.length === 1 && rb.length === 1 && ra[0].room === room && ra[0].seq === rb[0].seq,
			`A ${ra.length} (${ra.map((m) => m.seq)}), B ${rb.length} (${rb.map((m) => m.seq)})`
		);
		for (const m of ra) rooms.accept(room, m.seq);

		// 3. node 1 stops: A reconnects to node 2 and catches up
		if (!STOP || !START) throw new Error("--stop-socketio and --start-socketio are needed for check 3");
		const gone = new Promise((resolve) => socketA.once("disconnect", resolve));
		execSync(STOP, { stdio: "ignore" });
		stopped = true;
		await Promise.race([gone, sleep(10000)]);
		const away = [];
		for (let i = 1; i <= 3; i++) away.push(await alertAbout(`two-nodes alert away ${i}`, false));
		for (let i = 2; i <= 3; i++) await must(await admin2.put(resource("ToDo", roomTodo), { data: { description: `two-nodes room ${i}` } }));
		const before = got.a.length;
		socketA = await connectTo(SOCKET2, sidA, BASE);
		sockets.push(socketA);
		listen(socketA, "a");
		socketA.emit("doc_subscribe", "ToDo", roomTodo);
		const missed = (await (await a.get(`/api/method/rt_studio.api.missed?since=${seqA.since()}`)).json()).message;
		const missedRoom = (await (await a.get(`/api/method/rt_studio.api.missed_room?doctype=ToDo&docname=${encodeURIComponent(roomTodo)}&since=${rooms.since(room)}`)).json()).message;
		const shown = [];
		for (const m of seqA.caughtUp(missed)) if (m.rule === ALERT) shown.push(m.docname);
		const shownRoom = rooms.caughtUp(room, missedRoom).map((m) => m.seq);
		await sleep(1500);
		// anything that still arrives live now must not be shown again
		for (const m of got.a.slice(before)) {
			if (m.rule === ALERT && seqA.accept(m.seq)) shown.push(m.docname);
			if (m.rule === ROOM_RULE && rooms.accept(room, m.seq)) shownRoom.push(m.seq);
		}
		check(
			"3. a desk whose node stopped catches up on the other node: three alerts, each once",
			shown.length === 3 && away.every((name) => shown.filter((s) => s === name).length === 1),
			`shown ${shown.length}: ${shown.join(", ")}`
		);
		check("3b. and the two room messages, each once", shownRoom.length === 2 && new Set(shownRoom).size === 2, `room seqs ${shownRoom.join(",")}`);
		check("3c. nothing more is missed", (await (await a.get(`/api/method/rt_studio.api.missed?since=${seqA.since()}`)).json()).message.filter((m) => m.rule === ALERT).length === 0);
	} catch (e) {
		check("setup and run", false, e.message);
	} finally {
		if (stopped) execSync(START, { stdio: "ignore" });
		for (const s of sockets) s.close();
		for (const name of todos) await admin.delete(resource("ToDo", name));
		for (const name of [ALERT, ROOM_RULE]) await admin.delete(resource("Realtime Rule", name));
	}
	finish();
})();
