#!/usr/bin/env node
/*
 * RT Studio in a real browser: restarting the socket.io server loses no message and shows none twice.
 *
 *   NODE_PATH=/tmp/rtpw/node_modules node tests/browser/replay_desk.js \
 *       --url http://rt.localhost:8000 --password admin --out /tmp/rt-replay \
 *       --stop-socketio "CMD" --start-socketio "CMD"
 *
 * The two commands stop and start the site's socket.io server (for a bench run by supervisor,
 * `supervisorctl stop|start frappe-bench-node-socketio`); `--down SECONDS` (default 3) is how
 * long it stays down after the messages sent meanwhile. Same prerequisites as desk_e2e.js.
 * Over HTTP as Administrator it makes the desk user "rt.replay@example.com" (role "RT Viewer":
 * desk access, no permissions; a ToDo allocated to them is theirs to read) and two rules:
 * "E2E desk replay" (ToDo New, for descriptions with "desk-replay", to that user, Alert) and
 * "E2E desk viewers" (ToDo Save, Document Viewers, Alert). The user's desk opens a ToDo form;
 * then ToDos are created: 2 before the socket.io server stops, 5 while it is down, 1 right
 * after it starts, 1 once the desk is back. Checks, from what the desk's runtime showed:
 *   1. the desk lost its socket and got it back by itself;
 *   2. every one of the nine messages was shown exactly once (live, or in the summary);
 *   3. those missed while away came as one summary listing them, not as a flood of alerts;
 *   4. the desk re-joined the room of the open form: a save of it reaches the viewers' rule.
 * Screenshots: 01-summary-after-reconnect.png, 02-viewers-after-reconnect.png. Removes the
 * rules and ToDos at the end (the user and its role stay).
 */
"use strict";

const fs = require("fs");
const path = require("path");
const { execSync } = require("child_process");
const { USER, arg, check, deskAsUser, ensureUser, finish, launch, makeRules, must, resource, session, PASSWORD, BASE } = require("./lib");

const OUT = arg("out", "/tmp/rt-replay");
const STOP = arg("stop-socketio");
const START = arg("start-socketio");
// longer than about 8 s outlasts socket.io's own 3 reconnection attempts: the runtime's take over
const DOWN_SECONDS = Number(arg("down", "3"));
const RULE = "E2E desk replay";
const VIEWERS_RULE = "E2E desk viewers";

async function setup(api) {
	await ensureUser(api);
	await makeRules(api, {
		[RULE]: { event: "New", condition: "'desk-replay' in (doc.description or '')", audience: [{ audience_type: "User", user: USER }] },
		[VIEWERS_RULE]: {
			event: "Save",
			exclude_actor: 0,
			condition: "'desk-viewers' in (doc.description or '')",
			audience: [{ audience_type: "Document Viewers" }],
		},
	});
}

async function waitFor(page, fn, arg, ms = 20000) {
	return page.waitForFunction(fn, arg, { timeout: ms }).then(() => true, () => false);
}

(async () => {
	if (!STOP || !START) {
		console.error("usage: --stop-socketio CMD --start-socketio CMD (commands that stop and start the socket.io server)");
		process.exit(2);
	}
	fs.mkdirSync(OUT, { recursive: true });
	const browser = await launch();
	const api = await session("Administrator", PASSWORD);
	const todos = [];
	const todo = async (description) => {
		const doc = await must(await api.post(resource("ToDo"), { data: { description, allocated_to: USER } }));
		todos.push(doc.name);
		return doc;
	};
	try {
		await setup(api);
		const page = await (await deskAsUser(browser, api)).newPage();
		const form = await todo("desk-viewers: the open form");
		await page.goto(`${BASE}/app/todo/${form.name}`, { waitUntil: "networkidle" });
		await waitFor(page, () => window.cur_frm && cur_frm.doc && frappe.realtime.socket.connected && rt_studio.runtime.started);
		// record every alert and dialog the desk shows, and the socket's ups and downs
		await page.evaluate(() => {
			window.__shown = [];
			window.__socket = [];
			const alert = frappe.show_alert;
			frappe.show_alert = function (message, ...rest) {
				window.__shown.push({ message: message.message || String(message), body: message.body || "" });
				return alert.call(this, message, ...rest);
			};
			const socket = frappe.realtime.socket;
			socket.on("disconnect", () => window.__socket.push("down"));
			socket.on("connect", () => window.__socket.push("up"));
			socket.io.on("reconnect_failed", () => window.__socket.push("socket.io gave up"));
		});

		const texts = [];
		const send = async (label) => {
			const text = `desk-replay ${label} ${Math.random().toString(36).slice(2, 7)}`;
			texts.push(text);
			await todo(text);
		};
		await send("live-1");
		await send("live-2");
		await waitFor(page, (n) => window.__shown.length >= n, 2);
		execSync(STOP, { stdio: "inherit" });
		await waitFor(page, () => window.__socket.includes("down"), null, 10000);
		for (let i = 1; i <= 5; i++) await send(`away-${i}`);
		await new Promise((resolve) => setTimeout(resolve, DOWN_SECONDS * 1000));
		execSync(START, { stdio: "inherit" });
		await send("at-restart");
		const back = await waitFor(page, () => window.__socket.includes("up") && frappe.realtime.socket.connected, null, 60000);
		await page.waitForTimeout(1500);
		await send("after");
		await waitFor(page, (all) => all.every((t) => window.__shown.some((s) => (s.message + s.body).includes(t))), texts, 15000);
		await page.waitForTimeout(2000);  // anything shown twice would show by now
		const shown = await page.evaluate(() => window.__shown);
		const socket = await page.evaluate(() => window.__socket);
		await page.screenshot({ path: path.join(OUT, "01-summary-after-reconnect.png") });

		check("1. the desk lost its socket and got it back", back && socket[0] === "down" && socket.includes("up"), socket.join(" "));
		const counts = texts.map((t) => shown.reduce((n, s) => n + (s.message + s.body).split(t).length - 1, 0));
		check("2. every message shown exactly once", counts.every((n) => n === 1), texts.map((t, i) => `${t.split(" ")[1]}:${counts[i]}`).join(" "));
		const summaries = shown.filter((s) => /notifications while you were offline/.test(s.message));
		const listed = summaries.map((s) => texts.filter((t) => s.body.includes(t)).map((t) => t.split(" ")[1]));
		check(
			"3. what was missed came as one summary",
			summaries.length === 1 && listed[0].length >= 5 && listed[0].every((l) => l.startsWith("away") || l === "at-restart"),
			`${summaries.length} summary: ${JSON.stringify(listed)}; ${shown.length} alerts in all`
		);
		await page.evaluate(() => $("#alert-container .desk-alert").remove());
		await must(await api.put(resource("ToDo", form.name), { data: { description: "desk-viewers: saved after the restart" } }));
		const rejoined = await waitFor(page, () => window.__shown.some((s) => s.message.includes("desk-viewers: saved after the restart")), null, 5000);
		check("4. the open form's room was joined again", rejoined);
		await page.waitForTimeout(700);
		await page.screenshot({ path: path.join(OUT, "02-viewers-after-reconnect.png") });
	} catch (e) {
		check("run", false, e.stack);
	} finally {
		for (const name of todos) await api.delete(resource("ToDo", name));
		for (const name of [RULE, VIEWERS_RULE]) await api.delete(resource("Realtime Rule", name));
		await browser.close();
	}
	finish();
})();
