#!/usr/bin/env node
/*
 * RT Studio: the Refresh List and Refresh Form displays in a real browser.
 *
 *   NODE_PATH=/tmp/rtpw/node_modules node tests/browser/refresh_displays.js \
 *       --url http://127.0.0.1:8000 --password admin
 *
 * Same prerequisites as desk_e2e.js (a running site with rt_studio, Chromium, playwright-core
 * on NODE_PATH). Creates two rules and one ToDo, removes them at the end. Checks:
 *   1. Refresh List: 30 saves in a burst reach the open ToDo list as 30 messages but refresh
 *      it at most 3 times (the runtime coalesces bursts);
 *   2. Refresh Form: a form without unsaved changes reloads and shows the new value;
 *   3. with unsaved changes the form is not reloaded (the user's edit survives) and a banner
 *      says the document changed.
 * Prints PASS/FAIL per check, exits 1 on a failure.
 */
"use strict";

const { chromium, request } = require("playwright-core");

const arg = (name, fallback) => {
	const i = process.argv.indexOf(`--${name}`);
	return i > 0 ? process.argv[i + 1] : fallback;
};
const BASE = arg("url", "http://127.0.0.1:8000");
const PASSWORD = arg("password", "admin");
const RULES = { "E2E refresh list": "Refresh List", "E2E refresh form": "Refresh Form" };

let failed = 0;
function check(label, ok, detail) {
	console.log(`${ok ? "PASS" : "FAIL"} ${label}${detail ? ` (${detail})` : ""}`);
	if (!ok) failed++;
}

(async () => {
	const browser = await chromium.launch({
		executablePath: arg("chromium", "/usr/bin/chromium"),
		args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
	});
	// a bench without a proxy serves socket.io on its own port only: let the desk go there
	const direct = !(await (await request.newContext()).get(`${BASE}/socket.io/?EIO=4&transport=polling`)).ok();
	const ctx = await browser.newContext({ viewport: { width: 1300, height: 900 } });
	if (direct) {
		await ctx.addInitScript(() =>
			Object.defineProperty(window, "dev_server", { configurable: true, get: () => 1, set: () => {} })
		);
	}
	await ctx.request.post(`${BASE}/api/method/login`, { form: { usr: "Administrator", pwd: PASSWORD } });
	const api = await request.newContext();
	await api.post(`${BASE}/api/method/login`, { form: { usr: "Administrator", pwd: PASSWORD } });
	const remove = (dt, name) => api.delete(`${BASE}/api/resource/${encodeURIComponent(dt)}/${encodeURIComponent(name)}`);
	const save = (name, data) => api.put(`${BASE}/api/resource/ToDo/${name}`, { data });
	let todo;
	try {
		for (const [name, display] of Object.entries(RULES)) {
			await remove("Realtime Rule", name);
			await api.post(`${BASE}/api/resource/Realtime Rule`, {
				data: {
					rule_name: name,
					document_type: "ToDo",
					event: "Save",
					display,
					exclude_actor: 0,
					audience: [{ audience_type: "Role", role: "System Manager" }],
					subject: "{{ doc.description }}",
				},
			});
		}
		todo = (await (await api.post(`${BASE}/api/resource/ToDo`, { data: { description: "refresh 0" } })).json()).data;
		const page = await ctx.newPage();

		await page.goto(`${BASE}/app/todo`, { waitUntil: "networkidle" });
		await page.waitForFunction(() => window.cur_list && frappe.realtime.socket && frappe.realtime.socket.connected, null, { timeout: 20000 });
		await page.evaluate(() => {
			window.__refreshes = 0;
			const original = cur_list.refresh.bind(cur_list);
			cur_list.refresh = (...args) => (window.__refreshes++, original(...args));
		});
		for (let i = 1; i <= 30; i++) await save(todo.name, { description: `refresh ${i}` });
		await page.waitForTimeout(4000);
		const received = await page.evaluate(
			() => rt_studio.runtime.console.entries.filter((e) => e.rule === "E2E refresh list").length
		);
		const refreshes = await page.evaluate(() => window.__refreshes);
		check("1. Refresh List coalesces a burst", received === 30 && refreshes >= 1 && refreshes <= 3, `${received} messages, ${refreshes} refreshes`);

		await page.goto(`${BASE}/app/todo/${todo.name}`, { waitUntil: "networkidle" });
		await page.waitForFunction(() => window.cur_frm && cur_frm.doc.name && frappe.realtime.socket.connected, null, { timeout: 20000 });
		await save(todo.name, { description: "changed elsewhere" });
		await page.waitForFunction(() => cur_frm.doc.description === "changed elsewhere", null, { timeout: 5000 }).catch(() => {});
		const reloaded = await page.evaluate(() => cur_frm.doc.description);
		check("2. Refresh Form reloads a clean form", reloaded === "changed elsewhere", JSON.stringify(reloaded));

		await page.evaluate(() => cur_frm.set_value("priority", "High"));
		await save(todo.name, { description: "changed again" });
		await page.waitForTimeout(2500);
		const dirty = await page.evaluate(() => ({
			description: cur_frm.doc.description,
			priority: cur_frm.doc.priority,
			banner: $(cur_frm.wrapper).find(".form-message, .form-headline, .form-dashboard-headline").text().trim(),
		}));
		check(
			"3. an unsaved form is not reloaded and says it changed",
			dirty.description === "changed elsewhere" && dirty.priority === "High" && /changed|modified/i.test(dirty.banner),
			JSON.stringify(dirty)
		);
	} finally {
		for (const name of Object.keys(RULES)) await remove("Realtime Rule", name);
		if (todo) await remove("ToDo", todo.name);
		await browser.close();
	}
	console.log(failed ? `${failed} CHECK(S) FAILED` : "ALL CHECKS PASSED");
	process.exit(failed ? 1 : 0);
})();
