#!/usr/bin/env node
/*
 * My Notification Preferences in a real browser: the page changes what arrives live.
 *
 *   NODE_PATH=~/.rt-studio/node/node_modules node tests/browser/preferences.js \
 *       --url http://rt.localhost:8000 --password admin --out /tmp/rt-preferences [--docs docs]
 *
 * Same prerequisites as mute_dashboard.js. As Administrator over HTTP it makes the desk user
 * "rt.replay@example.com" (role RT Viewer) and the rule "E2E preferences" (ToDo New, to the ToDo's
 * assignee, Alert for 30 s); its ToDos are "e2e-pref ...". The user's desk, on the ToDo list:
 *   1. a ToDo for the user pops up its alert and the Realtime badge counts it;
 *   2. the Realtime drop-down's Preferences opens /app/my-notification-preferences (the user menu
 *      has "My notification preferences" too); the rule is listed (the user received from it) beside
 *      the default; unchecking its Live alert saves it (the page says so, and the API agrees);
 *   3. back on the ToDo list, the next ToDo pops up nothing for 4 s, yet the runtime received it
 *      and the badge counts it (one more);
 *   4. the default's Live alert stays on: checking the rule's again brings the alerts back.
 * Screenshots in --out (with --docs, the README's preferences.png). Removes the rule, its ToDos
 * and the user's preferences at the end, also after a failed step.
 */
"use strict";

const fs = require("fs");
const path = require("path");
const { BASE, PASSWORD, USER, USER_PASSWORD, arg, check, deskAsUser, ensureUser, finish, launch, makeRules, must, resource, session } = require("./lib");

const OUT = arg("out", "/tmp/rt-preferences");
const DOCS = arg("docs", null);
const RULE = "E2E preferences";
const MARK = "e2e-pref";

async function teardown(api) {
	const problems = [];
	const remove = async (doctype, filters) => {
		const found = await api.get(`${resource(doctype)}?limit_page_length=0&filters=${encodeURIComponent(JSON.stringify(filters))}`);
		for (const row of found.ok() ? (await found.json()).data : []) {
			const r = await api.delete(resource(doctype, row.name));
			if (!r.ok() && r.status() !== 404) problems.push(`${doctype} ${row.name}: HTTP ${r.status()}`);
		}
	};
	await remove("ToDo", [["description", "like", `${MARK}%`]]);
	await remove("Realtime Preference", [["user", "=", USER]]);
	await remove("Realtime Inbox Item", [["rule", "=", RULE]]);
	await api.delete(resource("Realtime Rule", RULE));
	return problems;
}

(async () => {
	fs.mkdirSync(OUT, { recursive: true });
	const browser = await launch();
	const api = await session("Administrator", PASSWORD);
	let page;
	const shot = (name) => page.waitForTimeout(700).then(() => page.screenshot({ path: path.join(OUT, name) }));
	try {
		await teardown(api);
		await ensureUser(api);
		await makeRules(api, {
			[RULE]: { event: "New", display: "Alert", audience: [{ audience_type: "User Field", user_field: "allocated_to" }] },
		});
		const mine = await session(USER, USER_PASSWORD);
		const todo = (description) => api.post(resource("ToDo"), { data: { description, allocated_to: USER } }).then(must);
		page = await (await deskAsUser(browser, api)).newPage();
		page.on("pageerror", (e) => console.log(`page error: ${e.message}`));
		const toList = async () => {
			await page.goto(`${BASE}/app/todo`, { waitUntil: "networkidle" });
			await page.waitForFunction(() => frappe.realtime.socket.connected && rt_studio.runtime.started, null, { timeout: 20000 });
		};
		await toList();
		const alertOf = (text) => page.locator("#alert-container .desk-alert", { hasText: text });
		const received = (text) => page.evaluate((t) => rt_studio.runtime.console.entries.some((e) => (e.message.subject || "").includes(t)), text);
		const badge = () => page.evaluate(() => Number(document.querySelector(".rt-inbox-badge")?.innerText || 0));

		// 1
		const before = await badge();
		await todo(`${MARK} one`);
		await alertOf(`${MARK} one`).waitFor({ timeout: 10000 });
		await page.waitForFunction((n) => Number(document.querySelector(".rt-inbox-badge")?.innerText || 0) === n, before + 1, { timeout: 5000 });
		check("1. the rule's alert pops up and the badge counts it", true, `badge ${before} -> ${before + 1}`);

		// 2: reached from the user menu and from the Realtime drop-down
		await page.locator(".dropdown-navbar-user > button").click();
		const menuItem = await page.locator(".rt-my-preferences-item").getAttribute("href");
		await page.keyboard.press("Escape");
		await page.locator(".rt-inbox-toggle").click();
		await page.locator(".rt-inbox-preferences").click();
		await page.waitForURL(/my-notification-preferences/);
		check("2. the page opens from the Realtime drop-down; the user menu links it too", menuItem === "/app/my-notification-preferences", menuItem);
		const row = page.locator(`.rt-preference-row[data-kind=rule][data-name="${RULE}"]`);
		await row.waitFor({ timeout: 10000 });
		const listed = await page.locator(".rt-preference-row").evaluateAll((rows) => rows.map((r) => r.dataset.kind + ":" + r.dataset.name));
		check("2. the page lists the default and the rule the user received from", listed[0] === "default:" && listed.includes(`rule:${RULE}`), JSON.stringify(listed));
		await row.locator("input[data-field=alert]").uncheck();
		await alertOf(`Saved: ${RULE}`).waitFor({ timeout: 10000 });
		const stored = (await (await mine.get("/api/method/rt_studio.api.my_preferences")).json()).message;
		check(
			"2. unchecking Live alert saves it for this rule only",
			stored.rules[RULE].alert === false && stored.default.alert === true,
			JSON.stringify({ rule: stored.rules[RULE], default: stored.default })
		);
		await page.waitForTimeout(3500); // the "Saved" alert fades
		await page.screenshot({ path: path.join(OUT, "preferences.png") });
		if (DOCS) fs.copyFileSync(path.join(OUT, "preferences.png"), path.join(DOCS, "preferences.png"));

		// 3
		await toList();
		const start = await badge();
		await todo(`${MARK} two`);
		await page.waitForFunction((n) => Number(document.querySelector(".rt-inbox-badge")?.innerText || 0) === n, start + 1, { timeout: 10000 });
		await page.waitForTimeout(4000);
		const popped = await alertOf(`${MARK} two`).count();
		check(
			"3. with the alert off nothing pops up, yet the message arrived and the badge counts it",
			popped === 0 && (await received(`${MARK} two`)) && (await badge()) === start + 1,
			`alerts ${popped}, badge ${start} -> ${await badge()}`
		);
		await shot("03-nothing-pops-up.png");

		// 4
		await page.goto(`${BASE}/app/my-notification-preferences`);
		await row.locator("input[data-field=alert]").check();
		await alertOf(`Saved: ${RULE}`).waitFor({ timeout: 10000 });
		await toList();
		await todo(`${MARK} three`);
		await alertOf(`${MARK} three`).waitFor({ timeout: 10000 });
		check("4. checking it again brings the alerts back", true);
		await shot("04-alert-back.png");
	} catch (e) {
		check("run", false, e.message);
		if (page) await page.screenshot({ path: path.join(OUT, "FAIL.png") }).catch(() => {});
	} finally {
		await browser.close();
		const problems = await teardown(api);
		console.log(`cleanup: ${problems.length ? problems.join("; ") : "done"}`);
	}
	finish();
})();
