#!/usr/bin/env node
/*
 * RT Studio: a socket that was away gets what it missed from `rt_studio.api.missed`, once, in order.
 *
 *   NODE_PATH=/tmp/rtpw/node_modules node tests/browser/replay_socket.js \
 *       --url http://127.0.0.1:8000 --socket http://127.0.0.1:9000 --site rt.localhost --password admin
 *
 * Needs `socket.io-client@4` and `playwright-core` (for its HTTP client) on NODE_PATH; no
 * browser. Over HTTP as Administrator it makes a desk user ("rt.replay@example.com", System
 * User with only the role "RT Viewer", which has desk access and no permissions: ToDo lets a
 * user read the ToDos allocated to them)
 * and ten rules "E2E replay 1" .. "E2E replay 10" (ToDo, New, each for ToDos whose description
 * names it, to that user). The user's socket connects with its session cookie, receives one
 * message live, disconnects; ten ToDos fire the ten rules one after another; the socket
 * connects again and the client asks `missed(since)` with the last number it saw. Checks:
 *   1. nothing arrives while disconnected (the socket really was away);
 *   2. `missed` returns the ten messages, numbers last+1 .. last+10, rules 1..10 in order;
 *   3. each equals what was published: the live message equals its copy in the log;
 *   4. shown once: the desk's SeqTracker lets each of the ten through once, whether it comes
 *      replayed or live, and a second `missed` with the new number returns nothing.
 * Removes the rules and ToDos at the end. Prints PASS/FAIL per check, exits 1 on a failure.
 */
"use strict";

const path = require("path");
const { isDeepStrictEqual } = require("util");
const { PASSWORD, USER, USER_PASSWORD, check, ensureUser, finish, makeRules, must, resource, session } = require("./lib");
const { connect, sleep, waitFor } = require("./socket");

const RULES = Array.from({ length: 10 }, (_, i) => `E2E replay ${i + 1}`);

async function setup(admin) {
	await ensureUser(admin);
	const rules = {};
	for (const [i, name] of RULES.entries()) {
		rules[name] = {
			event: "New",
			condition: `'replay-rule-${i + 1}.' in (doc.description or '')`,
			audience: [{ audience_type: "User", user: USER }],
			subject: `${name}: {{ doc.description }}`,
		};
	}
	await makeRules(admin, rules);
}

(async () => {
	const { SeqTracker } = await import(path.join(__dirname, "../../rt_studio/public/js/runtime/logic.js"));
	const admin = await session("Administrator", PASSWORD);
	const todos = [];
	let socket;
	try {
		await setup(admin);
		const user = await session(USER, USER_PASSWORD);
		const sid = (await user.storageState()).cookies.find((c) => c.name === "sid").value;
		const live = [];
		const listen = (s) => s.on("rt_studio", (m) => m && RULES.includes(m.rule) && live.push(m));
		socket = await connect(sid);
		listen(socket);
		const missed = async (since) => (await (await user.get(`/api/method/rt_studio.api.missed?since=${since}`)).json()).message;
		const allocate = async (description) =>
			todos.push((await must(await admin.post(resource("ToDo"), { data: { description, allocated_to: USER } }))).name);

		await allocate("replay-rule-1. before the break");
		await waitFor(() => live.length === 1);
		const [first] = live;
		const last = first && first.seq;
		check("0. a live message carries its number", Number.isInteger(last), JSON.stringify(first && { rule: first.rule, seq: first.seq }));
		const tracker = new SeqTracker(last - 1);
		tracker.accept(first.seq);

		socket.disconnect();
		for (let i = 1; i <= 10; i++) await allocate(`replay-rule-${i}. while away ${i}`);
		await sleep(1000);
		check("1. nothing arrives while disconnected", live.length === 1, `${live.length - 1} arrived`);

		socket = await connect(sid);
		listen(socket);
		const replayed = await missed(tracker.since());
		const rules = replayed.map((m) => m.rule);
		const seqs = replayed.map((m) => m.seq);
		check(
			"2. missed returns the ten, in order",
			replayed.length === 10 && rules.join() === RULES.join() && seqs.every((s, i) => s === last + 1 + i),
			`${replayed.length} messages, seq ${seqs[0]}..${seqs[seqs.length - 1]}, rules ${rules.map((r) => r.split(" ").pop()).join(",")}`
		);
		check(
			"2b. each names its ToDo",
			replayed.every((m, i) => m.docname === todos[i + 1] && m.subject === `${RULES[i]}: replay-rule-${i + 1}. while away ${i + 1}`),
			replayed.map((m) => m.docname).join(",")
		);
		const [logged] = await missed(last - 1);
		check("3. the log holds exactly what was published", isDeepStrictEqual(logged, first), JSON.stringify(logged).slice(0, 120));

		const shown = tracker.caughtUp(replayed).map((m) => m.seq);
		for (const m of replayed) if (tracker.accept(m.seq)) shown.push(m.seq); // the same ones arriving again
		await sleep(1000);
		for (const m of live.slice(1)) if (tracker.accept(m.seq)) shown.push(m.seq);
		check("4. each is shown once", shown.length === 10 && new Set(shown).size === 10, `${shown.length} shown`);
		check("4b. nothing more is missed", (await missed(tracker.since())).length === 0, `since ${tracker.since()}`);
	} catch (e) {
		check("setup and run", false, e.message);
	} finally {
		if (socket) socket.close();
		for (const name of todos) await admin.delete(resource("ToDo", name));
		for (const name of RULES) await admin.delete(resource("Realtime Rule", name));
	}
	finish();
})();
