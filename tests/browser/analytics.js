#!/usr/bin/env node
/*
 * Analytics in a real browser: the rule form's figures and chart of the last 30 days, the
 * Realtime Studio's table of rules by volume, and its Recent Evaluations paged and filtered on
 * the server.
 *
 *   NODE_PATH=~/.rt-studio/node/node_modules node tests/browser/analytics.js \
 *       --url http://rt.localhost:8000 --password admin --out /tmp/rt-analytics [--docs docs]
 *
 * Same prerequisites as desk_e2e.js. Over HTTP as Administrator it makes the rule
 * "E2E analytics" (ToDo, New, to the ToDo's owner, who made it: the actor is not excluded) and
 * 25 ToDos "E2E analytics <n>", so Administrator's inbox holds 25 of its messages and the trace
 * 25 evaluations; 10 of the messages are marked read. The desk, as Administrator, then:
 *   1. the rule's form shows Delivered 25, Read 10, Read rate 40% and a chart of the days;
 *   2. the Realtime Studio lists the rule among Rules by Volume with 25 delivered and 40%;
 *   3. its Recent Evaluations, filtered to the rule, shows 20 rows and "1–20 of 25"; Older shows
 *      the last 5 ("21–25 of 25"); the Result filter "error" shows none of the rule's.
 * Screenshots in --out (with --docs, rule-analytics.png and studio-analytics.png there too).
 * Removes the rule, its ToDos and its inbox items at the end, also after a failed step.
 */
"use strict";

const fs = require("fs");
const path = require("path");
const { BASE, PASSWORD, arg, check, finish, launch, must, resource, session } = require("./lib");

const OUT = arg("out", "/tmp/rt-analytics");
const DOCS = arg("docs", null);
const TIMEOUT = Number(arg("timeout", 15000));
const RULE = "E2E analytics";
const MARK = "E2E analytics";
const TODOS = 25;
const READ = 10;

const list = (doctype, filters) => `${resource(doctype)}?limit_page_length=0&filters=${encodeURIComponent(JSON.stringify(filters))}`;

async function call(api, method, data) {
	const r = await api.post(`/api/method/${method}`, { form: data });
	if (!r.ok()) throw new Error(`${method}: HTTP ${r.status()} ${(await r.text()).slice(0, 300)}`);
	return (await r.json()).message;
}

async function setup(api) {
	await teardown(api);
	await must(
		await api.post(resource("Realtime Rule"), {
			data: {
				rule_name: RULE,
				document_type: "ToDo",
				event: "New",
				audience: [{ audience_type: "Owner" }],
				exclude_actor: 0,
				display: "Alert",
				subject: "{{ doc.description }}",
			},
		})
	);
	for (let i = 1; i <= TODOS; i++) await must(await api.post(resource("ToDo"), { data: { description: `${MARK} ${i}` } }));
	const items = await must(await api.get(`${list("Realtime Inbox Item", [["rule", "=", RULE]])}&fields=${encodeURIComponent('["seq"]')}`));
	const seqs = items.map((item) => item.seq).slice(0, READ);
	await call(api, "rt_studio.api.mark_read", { seqs: JSON.stringify(seqs) });
	return items.length;
}

async function teardown(api) {
	const problems = [];
	const remove = async (doctype, filters) => {
		const found = await api.get(list(doctype, filters));
		for (const row of found.ok() ? (await found.json()).data : []) {
			const r = await api.delete(resource(doctype, row.name));
			if (!r.ok() && r.status() !== 404) problems.push(`${doctype} ${row.name}: HTTP ${r.status()}`);
		}
	};
	await remove("ToDo", [["description", "like", `${MARK}%`]]);
	await remove("Realtime Inbox Item", [["rule", "=", RULE]]);
	const r = await api.delete(resource("Realtime Rule", RULE));
	if (!r.ok() && r.status() !== 404) problems.push(`rule: HTTP ${r.status()}`);
	return problems;
}

async function shot(page, name, options = {}) {
	await page.screenshot({ path: path.join(OUT, name), ...options });
	if (DOCS && options.docs) fs.copyFileSync(path.join(OUT, name), path.join(DOCS, options.docs));
}

/** The page box of the Studio's Rules by Volume and Recent Evaluations sections (for the README). */
async function sectionsBox(page) {
	await page.evaluate(() => window.scrollTo(0, 0));
	return page.evaluate(() => {
		const boxes = [".rt-overview", ".rt-evaluations-pager"].map((s) => document.querySelector(s).closest(".rt-section").getBoundingClientRect());
		const top = boxes[0].top + window.scrollY - 8;
		return { x: 0, y: top, width: document.documentElement.clientWidth, height: boxes[1].bottom + window.scrollY + 8 - top };
	});
}

async function main() {
	fs.mkdirSync(OUT, { recursive: true });
	const api = await session("Administrator", PASSWORD);
	const browser = await launch();
	let page;
	try {
		const kept = await setup(api);
		check(`the rule's ${TODOS} messages are in the inbox`, kept === TODOS, `${kept}`);
		const ctx = await browser.newContext({ viewport: { width: 1300, height: 1000 } });
		await ctx.request.post(`${BASE}/api/method/login`, { form: { usr: "Administrator", pwd: PASSWORD } });
		page = await ctx.newPage();
		page.setDefaultTimeout(TIMEOUT);
		page.on("pageerror", (e) => console.log(`page error: ${e.message}`));

		// 1. the rule form
		await page.goto(`${BASE}/app/realtime-rule/${encodeURIComponent(RULE)}`);
		await page.waitForSelector(".rt-analytics .rt-analytics-chart svg");
		const figures = await page.locator(".rt-analytics-figures").innerText();
		const value = (label) => (figures.match(new RegExp(`${label}\\s+([^\\n]+)`)) || [])[1];
		check(
			"the form shows Delivered 25, Read 10 and a 40% read rate",
			value("Delivered") === String(TODOS) && value("Read") === String(READ) && value("Read rate") === "40%",
			figures.replace(/\s+/g, " ")
		);
		const bars = await page.locator(".rt-analytics-chart svg .bar-chart rect, .rt-analytics-chart svg rect.bar").count();
		check("the chart draws deliveries and reads per day", bars > 0, `${bars} bars`);
		await page.waitForTimeout(800); // the chart's bars grow in
		await page.locator(".rt-analytics").first().screenshot({ path: path.join(OUT, "rule-analytics.png") });
		if (DOCS) fs.copyFileSync(path.join(OUT, "rule-analytics.png"), path.join(DOCS, "rule-analytics.png"));

		// 2. rules by volume
		await page.goto(`${BASE}/app/realtime-studio/${encodeURIComponent(RULE)}`);
		const row = page.locator(`.rt-overview-row[data-name="${RULE}"]`);
		await row.waitFor();
		const cells = await row.locator("td").allInnerTexts();
		check("the Studio lists the rule by volume with its read rate", cells[1] === String(TODOS) && cells[2] === String(READ) && cells[3] === "40%", JSON.stringify(cells));

		// 3. the evaluations, paged on the server
		await page.waitForFunction(() => /of \d+ matching/.test(document.querySelector(".rt-page-info")?.innerText || ""));
		const info = () => page.locator(".rt-page-info").innerText();
		const rows = () => page.locator(".rt-evaluations tbody tr").count();
		let text = await info();
		check("the first page shows 20 of the rule's 25 evaluations", (await rows()) === 20 && text.startsWith("1–20 of 25 matching"), text);
		await page.locator(".rt-evaluations").scrollIntoViewIfNeeded();
		await shot(page, "studio-evaluations.png", { fullPage: true, docs: "studio-analytics.png", clip: await sectionsBox(page) });
		await page.click(".rt-older");
		await page.waitForFunction(() => document.querySelector(".rt-page-info").innerText.startsWith("21–"));
		text = await info();
		check("Older shows the last 5", (await rows()) === 5 && text.startsWith("21–25 of 25"), text);
		check("Older is disabled on the last page", await page.locator(".rt-older").isDisabled());
		await page.locator(".rt-evaluation-filters select[data-fieldname=result]").selectOption("error");
		await page.waitForFunction(() => /match/.test(document.querySelector(".rt-page-info").innerText) && !document.querySelector(".rt-page-info").innerText.startsWith("21–"));
		text = await info();
		check("the Result filter runs on the server: no errors of this rule", text.startsWith("None of the 25 kept evaluations match"), text);
		await shot(page, "studio-evaluations-errors.png", { fullPage: true });
	} catch (e) {
		check("run", false, e.message);
		if (page) await page.screenshot({ path: path.join(OUT, "FAIL.png"), fullPage: true }).catch(() => {});
	} finally {
		await browser.close();
		const problems = await teardown(api);
		console.log(`cleanup: ${problems.length ? problems.join("; ") : "done"}`);
	}
	finish();
}

main();
