#!/usr/bin/env node
/*
 * RT Studio: a form whose socket was away gets what was sent to its document's viewers meanwhile,
 * from `rt_studio.api.missed_room`, once, in order.
 *
 *   NODE_PATH=/tmp/rtpw/node_modules node tests/browser/replay_room.js \
 *       --url http://127.0.0.1:8000 --socket http://127.0.0.1:9000 --site rt.localhost --password admin
 *
 * Needs `socket.io-client@4` and `playwright-core` (for its HTTP client) on NODE_PATH; no browser.
 * Over HTTP as Administrator it makes the desk user of replay_socket.js, a ToDo allocated to that
 * user (so the user may read it) and the rule "E2E room replay" (ToDo, Save, audience Document
 * Viewers). The user loads the form over HTTP (getdoc, as the desk does), its socket joins the
 * document's room (doc_subscribe), receives one message live, disconnects; Administrator saves the
 * ToDo three times; the socket connects again and asks `missed_room` from the last number it saw.
 * Checks:
 *   0. the form's load carries its room's number, and a live message its `room` and a higher `seq`;
 *   1. nothing arrives while disconnected;
 *   2. `missed_room` returns the three, numbers last+1 .. last+3, in order;
 *   3. the log holds exactly what was published (the live message equals its copy);
 *   4. shown once: the desk's RoomSeqs lets each through once, and asking again returns nothing.
 * Removes the rule and the ToDo at the end. Prints PASS/FAIL per check, exits 1 on a failure.
 */
"use strict";

const path = require("path");
const { isDeepStrictEqual } = require("util");
const { PASSWORD, USER, USER_PASSWORD, check, ensureUser, finish, makeRules, must, resource, session } = require("./lib");
const { connect, sleep, waitFor } = require("./socket");

const RULE = "E2E room replay";

(async () => {
	const { RoomSeqs, formRoom } = await import(path.join(__dirname, "../../rt_studio/public/js/runtime/logic.js"));
	const admin = await session("Administrator", PASSWORD);
	let socket;
	let todo;
	try {
		await ensureUser(admin);
		await makeRules(admin, {
			[RULE]: {
				event: "Save",
				condition: "'room-replay' in (doc.description or '')",
				audience: [{ audience_type: "Document Viewers" }],
				subject: "{{ doc.description }}",
			},
		});
		todo = (await must(await admin.post(resource("ToDo"), { data: { description: "room-replay 0", allocated_to: USER } }))).name;
		const room = formRoom(["Form", "ToDo", todo]);
		const user = await session(USER, USER_PASSWORD);
		const sid = (await user.storageState()).cookies.find((c) => c.name === "sid").value;
		const load = await (await user.get(`/api/method/frappe.desk.form.load.getdoc?doctype=ToDo&name=${encodeURIComponent(todo)}`)).json();
		const start = ((load.docs || [])[0] || {}).__onload?.rt_studio_room_seq;
		const rooms = new RoomSeqs();
		rooms.open(room, start);

		const live = [];
		const join = (s) => {
			s.on("rt_studio", (m) => m && m.rule === RULE && live.push(m));
			s.emit("doc_subscribe", "ToDo", todo);
		};
		const save = async (description) => must(await admin.put(resource("ToDo", todo), { data: { description } }));
		const missedRoom = async (since) =>
			(await (await user.get(`/api/method/rt_studio.api.missed_room?doctype=ToDo&docname=${encodeURIComponent(todo)}&since=${since}`)).json()).message;

		socket = await connect(sid);
		join(socket);
		await sleep(500); // the room is joined after a read check on the server
		await save("room-replay 1 before the break");
		await waitFor(() => live.length === 1);
		const [first] = live;
		const last = first && first.seq;
		check(
			"0. the form's load has its room's number; a live message its room and a higher number",
			Number.isInteger(start) && first && first.room === room && Number.isInteger(last) && last > start,
			`start ${start}, live ${JSON.stringify(first && { room: first.room, seq: first.seq })}`
		);
		check("0b. shown live", rooms.accept(room, last));

		socket.disconnect();
		for (let i = 2; i <= 4; i++) await save(`room-replay ${i} while away`);
		await sleep(1000);
		check("1. nothing arrives while disconnected", live.length === 1, `${live.length - 1} arrived`);

		socket = await connect(sid);
		join(socket);
		// the page asks from the last number it has every message up to: the load's number when
		// the room had none before (0), so the message shown live comes again and is not shown twice
		const replayed = await missedRoom(rooms.since(room));
		const away = await missedRoom(last);
		const seqs = away.map((m) => m.seq);
		check(
			"2. missed_room after the live message returns the three, in order",
			away.length === 3 && seqs.every((s, i) => s === last + 1 + i) && away.every((m, i) => m.subject === `room-replay ${i + 2} while away`),
			`${away.length} messages, seq ${seqs.join(",")}`
		);
		const [logged] = await missedRoom(last - 1);
		check("3. the log holds exactly what was published", isDeepStrictEqual(logged, first), JSON.stringify(logged).slice(0, 120));
		const shown = rooms.caughtUp(room, replayed).map((m) => m.seq);
		for (const m of replayed) if (rooms.accept(room, m.seq)) shown.push(m.seq);
		check("4. each is shown once", shown.length === 3 && new Set(shown).size === 3, `${shown.length} shown`);
		check("4b. nothing more is missed", (await missedRoom(rooms.since(room))).length === 0, `since ${rooms.since(room)}`);
	} catch (e) {
		check("setup and run", false, e.message);
	} finally {
		if (socket) socket.close();
		if (todo) await admin.delete(resource("ToDo", todo));
		await admin.delete(resource("Realtime Rule", RULE));
	}
	finish();
})();
