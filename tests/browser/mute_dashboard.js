#!/usr/bin/env node
/*
 * RT Studio in a real browser: muting from the alert, the sticky and "My realtime
 * notifications", and a workspace whose Number Card and Chart refresh when a rule fires.
 *
 *   NODE_PATH=/tmp/rtpw/node_modules node tests/browser/mute_dashboard.js \
 *       --url http://rt.localhost:8000 --password admin --out /tmp/rt-mute
 *
 * Same prerequisites as desk_e2e.js. Over HTTP as Administrator it makes the desk user
 * "rt.replay@example.com" (role "RT Viewer": desk access, no permissions; ToDos allocated to
 * them are theirs to read), four rules on ToDo ("E2E mute", "E2E sticky" with display Sticky,
 * "E2E critical" with `critical`, "E2E dashboard": Value Change of status, display Refresh
 * Dashboard, to role RT Viewer), the Number Card "E2E open ToDos" (count of open ToDos), the
 * Dashboard Chart "E2E ToDos by status" and the public workspace "E2E Live" showing both.
 * The user's desk (a second browser context) then:
 *   1. gets an "E2E mute" alert offering "Mute this rule: 1 hour · 1 day · until I unmute";
 *   2. clicks "1 hour": a mute of about an hour is stored, and the next message never shows;
 *   3. gets an "E2E critical" alert with no mute offered; the API refuses to mute it; a Sticky
 *      rule's dialog offers the same mute line, and "1 day" mutes it;
 *   4. opens "My realtime notifications" from the user menu: the muted rule with its end and
 *      an Unmute button, the critical one marked as always delivered; Unmute brings alerts back;
 *   5. on "E2E Live", the card counts the user's own open ToDos (not everyone's), nothing is
 *      asked of the server while nothing changes, closing one of the user's ToDos elsewhere
 *      updates the card within a second and asks for the chart again, once; closing a ToDo
 *      the user cannot read does not (they get no message about it).
 * Screenshots in --out. Removes what it made at the end (the user and its role stay).
 */
"use strict";

const fs = require("fs");
const path = require("path");
const { BASE, PASSWORD, USER, USER_PASSWORD, arg, check, deskAsUser, ensureUser, finish, launch, makeRules, must, resource, session } = require("./lib");

const OUT = arg("out", "/tmp/rt-mute");
const CARD = "E2E open ToDos";
const CHART = "E2E ToDos by status";
const WORKSPACE = "E2E Live";
const RULES = {
	"E2E mute": { event: "New", condition: "'e2e-mute' in (doc.description or '')", audience: [{ audience_type: "User", user: USER }] },
	"E2E sticky": { event: "New", display: "Sticky", condition: "'e2e-sticky' in (doc.description or '')", audience: [{ audience_type: "User", user: USER }] },
	"E2E critical": { event: "New", critical: 1, condition: "'e2e-critical' in (doc.description or '')", audience: [{ audience_type: "User", user: USER }] },
	"E2E dashboard": {
		event: "Value Change",
		value_changed: "status",
		display: "Refresh Dashboard",
		condition: "'e2e-card' in (doc.description or '')",
		audience: [{ audience_type: "Role", role: "RT Viewer" }],
	},
};

async function setup(api) {
	await ensureUser(api);
	await teardown(api);
	await makeRules(api, RULES);
	await must(
		await api.post(resource("Number Card"), {
			data: { label: CARD, type: "Document Type", document_type: "ToDo", function: "Count", is_public: 1, filters_json: '[["ToDo","status","=","Open",false]]' },
		})
	);
	await must(
		await api.post(resource("Dashboard Chart"), {
			data: {
				chart_name: CHART,
				chart_type: "Group By",
				document_type: "ToDo",
				group_by_type: "Count",
				group_by_based_on: "status",
				type: "Bar",
				is_public: 1,
				filters_json: "[]",
			},
		})
	);
	const blocks = [
		{ id: "e2ecard01", type: "number_card", data: { number_card_name: CARD, col: 4 } },
		{ id: "e2echart1", type: "chart", data: { chart_name: CHART, col: 8 } },
	];
	await must(
		await api.post(resource("Workspace"), {
			data: {
				label: WORKSPACE,
				title: WORKSPACE,
				public: 1,
				content: JSON.stringify(blocks),
				number_cards: [{ number_card_name: CARD, label: CARD }],
				charts: [{ chart_name: CHART, label: CHART }],
			},
		})
	);
}

async function teardown(api) {
	for (const name of Object.keys(RULES)) await api.delete(resource("Realtime Rule", name));
	await api.delete(resource("Workspace", WORKSPACE));
	await api.delete(resource("Number Card", CARD));
	await api.delete(resource("Dashboard Chart", CHART));
}

(async () => {
	fs.mkdirSync(OUT, { recursive: true });
	const browser = await launch();
	const api = await session("Administrator", PASSWORD);
	let mine;
	const todos = [];
	const todo = async (description, allocated_to = USER) => {
		const doc = await must(await api.post(resource("ToDo"), { data: { description, allocated_to } }));
		todos.push(doc.name);
		return doc;
	};
	// after the alert's and the dialog's animations
	const shot = (page, name) => page.waitForTimeout(700).then(() => page.screenshot({ path: path.join(OUT, name) }));
	try {
		await setup(api);
		mine = await session(USER, USER_PASSWORD);
		for (const rule of Object.keys(RULES)) await mine.post("/api/method/rt_studio.api.unmute", { form: { rule } });
		const page = await (await deskAsUser(browser, api)).newPage();
		await page.goto(`${BASE}/app/todo`, { waitUntil: "networkidle" });
		await page.waitForFunction(() => frappe.realtime.socket.connected && rt_studio.runtime.started, null, { timeout: 20000 });
		const alertOf = (text) => page.locator("#alert-container .desk-alert", { hasText: text });
		const received = (text) => page.evaluate((t) => rt_studio.runtime.console.entries.some((e) => (e.message.subject || "").includes(t)), text);

		// 1-2: mute from the alert
		await todo("e2e-mute one");
		await alertOf("e2e-mute one").waitFor({ timeout: 10000 });
		const offer = (await alertOf("e2e-mute one").locator(".rt-studio-mute").innerText()).replace(/\s+/g, " ");
		check("1. the alert offers to mute its rule", offer === "Mute this rule: 1 hour · 1 day · until I unmute", offer);
		await shot(page, "01-alert-offers-mute.png");
		await alertOf("e2e-mute one").locator("[data-action=rt_mute_0]").click();
		await alertOf("Muted rule E2E mute for 1 hour").waitFor({ timeout: 10000 });
		await shot(page, "02-muted-for-an-hour.png");
		const filters = encodeURIComponent(JSON.stringify({ user: USER, rule: "E2E mute" }));
		const [stored] = await must(await api.get(`${resource("Realtime Mute")}?filters=${filters}&fields=["until","creation"]`));
		const at = (text) => new Date(text.replace(" ", "T"));
		const minutes = stored ? (at(stored.until) - at(stored.creation)) / 60000 : NaN;
		await todo("e2e-mute two");
		await page.waitForTimeout(3000);
		check(
			"2. one click mutes it for an hour: the next message does not come",
			Math.abs(minutes - 60) < 5 && !(await received("e2e-mute two")) && !(await alertOf("e2e-mute two").count()),
			`the mute ends ${minutes.toFixed(1)} min after it was made`
		);

		// 3: a critical rule
		await todo("e2e-critical one");
		await alertOf("e2e-critical one").waitFor({ timeout: 10000 });
		const refused = await mine.post("/api/method/rt_studio.api.mute", { form: { rule: "E2E critical" } });
		check(
			"3. a critical rule's alert offers no mute, and the API refuses it",
			(await alertOf("e2e-critical one").locator(".rt-studio-mute").count()) === 0 && !refused.ok() && /is critical/.test(await refused.text()),
			`HTTP ${refused.status()}`
		);
		await shot(page, "03-critical-no-mute.png");

		// 3b: mute from a sticky
		await todo("e2e-sticky one");
		const sticky = page.locator(".modal.show", { hasText: "e2e-sticky one" });
		await sticky.waitFor({ timeout: 10000 });
		const stickyOffer = (await sticky.locator(".rt-studio-mute").innerText()).replace(/\s+/g, " ");
		await shot(page, "03b-sticky-offers-mute.png");
		await sticky.locator("[data-action=rt_mute_1]").click();
		await alertOf("Muted rule E2E sticky for 1 day").waitFor({ timeout: 10000 });
		await todo("e2e-sticky two");
		await page.waitForTimeout(3000);
		check(
			"3b. a sticky offers the same, and muting from it works",
			stickyOffer === "Mute this rule: 1 hour · 1 day · until I unmute" && !(await received("e2e-sticky two")),
			stickyOffer
		);
		await page.keyboard.press("Escape");

		// 4: My realtime notifications
		await page.locator(".dropdown-navbar-user > button").click();
		await page.locator(".rt-my-notifications-item").click();
		const table = page.locator(".modal.show .rt-my-notifications");
		await table.waitFor({ timeout: 10000 });
		const rows = (await table.locator("tbody tr").allInnerTexts()).map((t) => t.replace(/\s+/g, " "));
		await shot(page, "04-my-notifications.png");
		const muteRow = rows.find((r) => r.startsWith("E2E mute")) || "";
		const criticalRow = rows.find((r) => r.startsWith("E2E critical")) || "";
		check(
			"4. My realtime notifications lists the mute and the critical rule",
			/muted until/.test(muteRow) && /Unmute/.test(muteRow) && /critical: always delivered/.test(criticalRow) && !/Mute:/.test(criticalRow),
			JSON.stringify(rows)
		);
		await table.locator("tbody tr", { hasText: "E2E mute" }).locator(".rt-unmute").click();
		await page.locator(".modal.show .rt-my-notifications tbody tr", { hasText: "E2E mute" }).locator(".rt-mute").first().waitFor({ timeout: 10000 });
		await shot(page, "05-after-unmute.png");
		await page.keyboard.press("Escape");
		await todo("e2e-mute three");
		const back = await alertOf("e2e-mute three").waitFor({ timeout: 10000 }).then(() => true, () => false);
		check("4b. after Unmute the alerts come again", back);

		// 5: the live dashboard
		for (let i = 1; i <= 3; i++) await todo(`e2e-card mine ${i}`);
		const others = [await todo("e2e-card not mine 1", "Administrator"), await todo("e2e-card not mine 2", "Administrator")];
		await page.goto(`${BASE}/app/${WORKSPACE.toLowerCase().replace(/ /g, "-")}`, { waitUntil: "networkidle" });
		const number = page.locator(".number-widget-box .number").first();
		await number.waitFor({ timeout: 15000 });
		await page.locator(".dashboard-widget-box .chart-container, .dashboard-widget-box .frappe-chart").first().waitFor({ timeout: 15000 });
		await page.evaluate(() => {
			window.__card_requests = 0;
			window.__chart_requests = 0;
			const xcall = frappe.xcall;
			frappe.xcall = function (method, ...rest) {
				if (String(method).endsWith("number_card.get_result")) window.__card_requests++;
				if (String(method).endsWith("dashboard_chart.get")) window.__chart_requests++;
				return xcall.call(this, method, ...rest);
			};
		});
		const mineOpen = (await must(await mine.get(`${resource("ToDo")}?filters=${encodeURIComponent('[["status","=","Open"]]')}&limit_page_length=0`))).length;
		const allOpen = (await must(await api.get(`${resource("ToDo")}?filters=${encodeURIComponent('[["status","=","Open"]]')}&limit_page_length=0`))).length;
		const before = Number((await number.innerText()).trim());
		await page.waitForTimeout(5000);
		const idle = await page.evaluate(() => window.__card_requests + window.__chart_requests);
		check("5a. the card counts what the viewer may see", before === mineOpen && allOpen > mineOpen, `card ${before}, viewer's open ToDos ${mineOpen}, all ${allOpen}`);
		check("5b. no polling: nothing asked while nothing changed", idle === 0, `${idle} requests in 5 s`);
		await shot(page, "06-workspace-before.png");
		const mineToClose = (await must(await mine.get(`${resource("ToDo")}?filters=${encodeURIComponent('[["status","=","Open"],["description","like","e2e-card mine%"]]')}`)))[0].name;
		const started = Date.now();
		await must(await api.put(resource("ToDo", mineToClose), { data: { status: "Closed" } }));
		const updated = await page
			.waitForFunction((n) => Number(document.querySelector(".number-widget-box .number")?.innerText) === n, before - 1, { timeout: 5000 })
			.then(() => Date.now() - started, () => null);
		await shot(page, "07-workspace-after-close.png");
		check("5c. closing a ToDo elsewhere updates the card within a second", updated !== null && updated <= 1000, updated === null ? "no update in 5 s" : `${updated} ms after the request started`);
		const charts = await page.evaluate(() => window.__chart_requests);
		check("5c'. and re-runs the Dashboard Chart on ToDo beside it", charts === 1, `${charts} chart request(s)`);
		const requestsBefore = await page.evaluate(() => window.__card_requests);
		await must(await api.put(resource("ToDo", others[0].name), { data: { status: "Closed" } }));
		await page.waitForTimeout(3000);
		check(
			"5d. a ToDo the viewer cannot read sends them nothing",
			(await page.evaluate(() => window.__card_requests)) === requestsBefore && Number(await number.innerText()) === before - 1
		);
	} catch (e) {
		check("run", false, e.stack);
	} finally {
		for (const rule of Object.keys(RULES)) if (mine) await mine.post("/api/method/rt_studio.api.unmute", { form: { rule } }).catch(() => {});
		for (const name of todos) await api.delete(resource("ToDo", name));
		await teardown(api);
		await browser.close();
	}
	finish();
})();
