#!/usr/bin/env node
/*
 * A reloaded desk does not show again what it showed before the reload.
 *
 *   NODE_PATH=... node tests/browser/replay_reload.js --url http://rt.localhost:8000 --password admin --out DIR
 *
 * Frappe caches a user's boot info: the desk's starting `seq` must not come from it. The user
 * "rt.replay@example.com" (see lib.js) opens the desk (which fills Frappe's boot cache), gets
 * three messages live, then reloads the page. Checks: the three were shown live; after the
 * reload no "notifications while you were offline" summary and none of them again; a fourth
 * message after the reload is shown live once. Removes its rule and ToDos at the end.
 */
"use strict";

const fs = require("fs");
const path = require("path");
const { USER, arg, check, deskAsUser, ensureUser, finish, launch, makeRules, must, resource, session, PASSWORD, BASE } = require("./lib");

const OUT = arg("out", "/tmp/rt-reload");
const RULE = "E2E reload replay";

async function record(page) {
	await page.waitForFunction(() => window.frappe && frappe.realtime.socket && frappe.realtime.socket.connected && window.rt_studio && rt_studio.runtime.started, null, { timeout: 20000 });
	await page.evaluate(() => {
		window.__shown = [];
		const alert = frappe.show_alert;
		frappe.show_alert = function (message, ...rest) {
			window.__shown.push({ message: message.message || String(message), body: message.body || "" });
			return alert.call(this, message, ...rest);
		};
	});
}

(async () => {
	fs.mkdirSync(OUT, { recursive: true });
	const browser = await launch();
	const api = await session("Administrator", PASSWORD);
	const todos = [];
	const send = async (label) => {
		const text = `reload-replay ${label} ${Math.random().toString(36).slice(2, 7)}`;
		const doc = await must(await api.post(resource("ToDo"), { data: { description: text, allocated_to: USER } }));
		todos.push(doc.name);
		return text;
	};
	try {
		await ensureUser(api);
		await makeRules(api, {
			[RULE]: { event: "New", condition: "'reload-replay' in (doc.description or '')", audience: [{ audience_type: "User", user: USER }] },
		});
		const page = await (await deskAsUser(browser, api)).newPage();
		await page.goto(`${BASE}/app/todo`, { waitUntil: "networkidle" });
		await record(page);
		const before = [await send("one"), await send("two"), await send("three")];
		const live = await page
			.waitForFunction((all) => all.every((t) => window.__shown.some((s) => (s.message + s.body).includes(t))), before, { timeout: 15000 })
			.then(() => true, () => false);
		check("three messages shown live before the reload", live);

		await page.reload({ waitUntil: "networkidle" });
		await record(page);
		await page.waitForTimeout(3000);
		// what the desk shows now, also what it showed before `record` (a catch-up right at start)
		const afterReload = await page.evaluate(() =>
			Array.from(document.querySelectorAll("#alert-container .desk-alert")).map((e) => e.innerText)
		);
		const shownAgain = afterReload.filter((t) => before.some((b) => t.includes(b)) || /while you were offline/.test(t));
		await page.screenshot({ path: path.join(OUT, "after-reload.png") });
		check("after the reload nothing seen before is shown again", shownAgain.length === 0, shownAgain.join(" | ").slice(0, 300));

		const fourth = await send("four");
		const once = await page
			.waitForFunction((t) => window.__shown.filter((s) => s.message.startsWith(t)).length === 1, fourth, { timeout: 15000 })
			.then(() => true, () => false);
		await page.waitForTimeout(1000);
		// this rule's alert reads exactly the description (other rules of the site may alert too)
		const count = await page.evaluate((t) => window.__shown.filter((s) => s.message.startsWith(t)).length, fourth);
		check("a message after the reload is shown live, once", once && count === 1, `shown ${count} time(s)`);
	} catch (e) {
		check("run", false, e.stack);
	} finally {
		for (const name of todos) await api.delete(resource("ToDo", name));
		await api.delete(resource("Realtime Rule", RULE));
		await browser.close();
	}
	finish();
})();
