// Dialog titles built from names show the names as text: a rule and a channel whose names hold
// HTML entities (Frappe refuses < and > in names; an entity would turn into markup if the title
// were inserted unescaped) open their Backtest and "Post to" dialogs, and the titles read as typed.
// Needs playwright-core on NODE_PATH (dev/test installs it). Usage:
//   node tests/browser/dialog_titles.js --url http://rt.localhost:8000 --password ADMIN_PASSWORD [--out DIR]
// Makes the rule and the channel (disabled rule on Note, channel of Administrator alone) and
// deletes them at the end. Exit 1 when a check failed.
"use strict";

const fs = require("fs");
const path = require("path");
const { BASE, PASSWORD, arg, check, finish, launch, must, resource, session } = require("./lib");

const OUT = arg("out", "/tmp/rt-dialog-titles");
const RULE = 'rt-test-title &lt;b&gt;bold&lt;/b&gt; & "q"';
const CHANNEL = "rt-test-title &lt;i&gt;it&lt;/i&gt;";

async function dialogTitle(page, button) {
	await page.locator(`button:has-text('${button}')`).first().click();
	await page.waitForSelector(".modal.show .modal-title", { timeout: 15000 });
	return page.locator(".modal.show .modal-title").first().innerText();
}

async function main() {
	fs.mkdirSync(OUT, { recursive: true });
	const admin = await session("Administrator", PASSWORD);
	await admin.delete(resource("Realtime Rule", RULE));
	await admin.delete(resource("Realtime Channel", CHANNEL));
	await must(await admin.post(resource("Realtime Rule"), { data: { rule_name: RULE, document_type: "Note", event: "New", enabled: 0, subject: "x", audience: [{ audience_type: "Owner" }] } }));
	await must(await admin.post(resource("Realtime Channel"), { data: { channel_name: CHANNEL, members: [{ member_type: "User", user: "Administrator" }] } }));
	const browser = await launch();
	const ctx = await browser.newContext({ viewport: { width: 1300, height: 900 } });
	await ctx.addInitScript(() => Object.defineProperty(window, "dev_server", { configurable: true, get: () => 1, set: () => {} }));
	await ctx.request.post(`${BASE}/api/method/login`, { form: { usr: "Administrator", pwd: PASSWORD } });
	const page = await ctx.newPage();
	try {
		await page.goto(`${BASE}/app/realtime-rule/${encodeURIComponent(RULE)}`);
		await page.waitForFunction(() => window.cur_frm && cur_frm.doc && cur_frm.doc.rule_name, null, { timeout: 30000 });
		const backtest = await dialogTitle(page, "Backtest");
		await page.screenshot({ path: path.join(OUT, "backtest-title.png") });
		check("the Backtest dialog's title shows the rule name as typed", backtest === `Backtest ${RULE}`, backtest);
		await page.keyboard.press("Escape");
		await page.goto(`${BASE}/app/realtime-channel/${encodeURIComponent(CHANNEL)}`);
		await page.waitForFunction(() => window.cur_frm && cur_frm.doc && cur_frm.doc.channel_name, null, { timeout: 30000 });
		const post = await dialogTitle(page, "Post");
		await page.screenshot({ path: path.join(OUT, "post-title.png") });
		check('the "Post to" dialog\'s title shows the channel name as typed', post === `Post to ${CHANNEL}`, post);
	} catch (e) {
		check("dialog titles", false, String(e).split("\n")[0]);
		await page.screenshot({ path: path.join(OUT, "FAIL-dialog-titles.png") }).catch(() => {});
	} finally {
		await admin.delete(resource("Realtime Rule", RULE));
		await admin.delete(resource("Realtime Channel", CHANNEL));
		await browser.close();
	}
	finish();
}

main().catch((e) => {
	console.error(e);
	process.exit(1);
});
