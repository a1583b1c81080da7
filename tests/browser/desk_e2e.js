#!/usr/bin/env node
/*
 * RT Studio desk end-to-end test: a real browser against a live Frappe v15 site with
 * rt_studio installed. Not collected by pytest (plain Node CommonJS script).
 *
 * Prerequisites
 *   - a running bench (web + socket.io + redis) with rt_studio installed and its assets
 *     built (`bench build --app rt_studio`);
 *   - the site's setup wizard completed (the desk sends every /app page to it until then);
 *   - the Administrator password; the test creates (or resets) non-System-Manager desk users
 *     rt.e2e.viewer@, rt.e2e.poster@ and rt.e2e.outsider@example.com, the channel "e2e-ops"
 *     (viewer and poster are members), the rules "E2E ToDo alert" and "E2E bell", and ToDos
 *     whose description starts with "E2E". At the end it deletes the rules, the channel and
 *     the ToDos, and locks the users (random password, disabled), also after a failure;
 *   - Chromium (default /usr/bin/chromium, or --chromium PATH / $CHROMIUM) and the npm
 *     package playwright-core, resolved through NODE_PATH (e.g. `npm i playwright-core`
 *     in some folder, then NODE_PATH=that/node_modules).
 *
 * Run
 *   NODE_PATH=/tmp/rtpw/node_modules node tests/browser/desk_e2e.js \
 *       --url http://127.0.0.1:8000 --password admin --out /tmp/rt-e2e
 *
 * Options: --url SITE_URL  --password ADMIN_PASSWORD  --out SCREENSHOT_DIR
 *          [--docs DIR]: also write the README's screenshots there (docs/ of the repository)
 *          [--chromium PATH] [--headed] [--timeout MS (per wait, default 15000)]
 *          [--socketio auto|origin|direct]: how the desk reaches socket.io. `origin` is
 *          production (nginx proxies <url>/socket.io/); `direct` makes the desk connect to
 *          the site's socketio_port on the same host, as under `bench start` (the test pins
 *          window.dev_server); `auto` (default) probes <url>/socket.io/ and picks.
 *
 * Prints one PASS/FAIL line per step and exits 1 if any step failed (2 on a usage error).
 * Screenshots (PNG) go to --out; see tests/browser/README.md for what each shows.
 */
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const path = require("path");

let chromium, request;
try {
	({ chromium, request } = require("playwright-core"));
} catch (e) {
	console.error("playwright-core not found: set NODE_PATH to a node_modules folder that has it");
	process.exit(2);
}

// ----------------------------------------------------------------------------- options

function parseArgs(argv) {
	const opts = {
		url: "http://127.0.0.1:8000",
		password: null,
		out: "rt-e2e-screenshots",
		docs: null,
		chromium: process.env.CHROMIUM || "/usr/bin/chromium",
		headed: false,
		timeout: 15000,
		socketio: "auto",
	};
	for (let i = 0; i < argv.length; i++) {
		const arg = argv[i];
		const next = () => {
			if (i + 1 >= argv.length) usage(`${arg} needs a value`);
			return argv[++i];
		};
		if (arg === "--url") opts.url = next().replace(/\/+$/, "");
		else if (arg === "--password") opts.password = next();
		else if (arg === "--out") opts.out = next();
		else if (arg === "--docs") opts.docs = next();
		else if (arg === "--chromium") opts.chromium = next();
		else if (arg === "--timeout") opts.timeout = Number(next());
		else if (arg === "--headed") opts.headed = true;
		else if (arg === "--socketio") opts.socketio = next();
		else if (arg === "-h" || arg === "--help") usage();
		else usage(`unknown argument ${arg}`);
	}
	if (!opts.password) usage("--password is required");
	if (!["auto", "origin", "direct"].includes(opts.socketio)) usage("--socketio is auto, origin or direct");
	return opts;
}

function usage(problem) {
	if (problem) console.error(`error: ${problem}`);
	console.error(
		"usage: node tests/browser/desk_e2e.js --url URL --password ADMIN_PASSWORD --out DIR" +
			" [--docs DIR] [--chromium PATH] [--headed] [--timeout MS] [--socketio auto|origin|direct]"
	);
	process.exit(2);
}

const opts = parseArgs(process.argv.slice(2));
const T = opts.timeout;

const RULE = "E2E ToDo alert";
const VIEWER = "rt.e2e.viewer@example.com";
const VIEWER_PASSWORD = "Rt-E2e-Viewer-7431!";
// A role with desk access that is not System Manager (System Users need one to stay System Users).
const VIEWER_ROLE = "Blogger";
const XSS = `<img src=x onerror="window.__xss=1">E2E xss`;
// Step 8-10: a channel with the viewer and a poster as members, an outsider who is not one.
const POSTER = "rt.e2e.poster@example.com";
const POSTER_PASSWORD = "Rt-E2e-Poster-5186!";
const OUTSIDER = "rt.e2e.outsider@example.com";
const OUTSIDER_PASSWORD = "Rt-E2e-Outsider-2957!";
const CHANNEL = "e2e-ops";
const CHANNEL_EVENT = "rt_studio_channel";
const POST_TEXT = "<b>bold?</b> ops ready";
const BELL_RULE = "E2E bell";

// ----------------------------------------------------------------------------- harness

const results = [];
const shots = [];
let currentStep = null;

async function step(name, fn) {
	currentStep = name;
	const started = Date.now();
	try {
		await fn();
		results.push({ name, ok: true });
		console.log(`PASS ${name} (${((Date.now() - started) / 1000).toFixed(1)}s)`);
	} catch (e) {
		results.push({ name, ok: false });
		const message = (e && e.message ? e.message : String(e)).split("\n").slice(0, 6).join("\n    ");
		console.log(`FAIL ${name}: ${message}`);
		for (const page of livePages) {
			try {
				await shot(page.page, `FAIL-${slug(name)}-${page.label}`);
			} catch (_) {
				/* best effort */
			}
		}
	}
}

function check(condition, message) {
	if (!condition) throw new Error(message);
}

function slug(text) {
	return text.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 40);
}

async function shot(page, name, options = {}) {
	const file = path.join(opts.out, `${name}.png`);
	await page.screenshot({ path: file, ...options });
	shots.push(file);
	return file;
}

/**
 * A screenshot for the README (only with --docs): an element (a locator), or a region of the
 * page ({x, y, width, height} in page coordinates), so the PNGs show what matters and stay small.
 * Frappe's own alerts ("Saved") are removed first unless `keepAlerts`.
 */
async function docShot(page, name, target, { keepAlerts = false } = {}) {
	if (!opts.docs) return;
	if (!keepAlerts) await page.evaluate(() => document.querySelectorAll("#alert-container .alert").forEach((el) => el.remove()));
	const file = path.join(opts.docs, `${name}.png`);
	if (typeof target.screenshot === "function") await target.screenshot({ path: file });
	else await page.screenshot({ path: file, clip: target, fullPage: true });
	shots.push(file);
}

const livePages = [];
const pageErrors = [];

function watch(page, label) {
	livePages.push({ page, label });
	page.on("pageerror", (e) => pageErrors.push(`[${label}] pageerror: ${e.message}`));
	page.on("console", (m) => {
		if (m.type() === "error") pageErrors.push(`[${label}] console: ${m.text()}`);
	});
}

async function poll(fn, { timeout = T, interval = 200, message = "condition" } = {}) {
	const until = Date.now() + timeout;
	let last;
	for (;;) {
		last = await fn();
		if (last) return last;
		if (Date.now() > until) throw new Error(`timed out after ${timeout} ms waiting for ${message}`);
		await new Promise((r) => setTimeout(r, interval));
	}
}

// ----------------------------------------------------------------------------- REST (Administrator)

class Api {
	constructor(ctx) {
		this.ctx = ctx;
	}

	static async login(baseURL, usr, pwd) {
		const ctx = await request.newContext({ baseURL });
		const r = await ctx.post("/api/method/login", { form: { usr, pwd } });
		check(r.ok(), `REST login as ${usr} failed: HTTP ${r.status()} ${await r.text()}`);
		return new Api(ctx);
	}

	async call(method, url, data) {
		const options = { headers: { Accept: "application/json" } };
		if (data !== undefined) options.data = data;
		const r = await this.ctx.fetch(url, { method, ...options });
		const text = await r.text();
		let body;
		try {
			body = JSON.parse(text);
		} catch (_) {
			body = { raw: text };
		}
		return { status: r.status(), ok: r.ok(), body };
	}

	async must(method, url, data) {
		const r = await this.call(method, url, data);
		if (!r.ok) {
			const why = r.body.exception || r.body.exc_type || JSON.stringify(r.body).slice(0, 300);
			throw new Error(`${method} ${url}: HTTP ${r.status}: ${why}`);
		}
		return r.body.data !== undefined ? r.body.data : r.body.message;
	}

	resource(doctype, name) {
		return `/api/resource/${encodeURIComponent(doctype)}${name ? "/" + encodeURIComponent(name) : ""}`;
	}

	async exists(doctype, name) {
		const r = await this.call("GET", this.resource(doctype, name));
		if (r.status === 404) return false;
		check(r.ok, `GET ${doctype} ${name}: HTTP ${r.status}`);
		return r.body.data;
	}

	list(doctype, filters, fields = ["name"]) {
		const q = `?filters=${encodeURIComponent(JSON.stringify(filters))}&fields=${encodeURIComponent(
			JSON.stringify(fields)
		)}&limit_page_length=0`;
		return this.must("GET", this.resource(doctype) + q);
	}

	insert(doctype, doc) {
		return this.must("POST", this.resource(doctype), doc);
	}

	update(doctype, name, doc) {
		return this.must("PUT", this.resource(doctype, name), doc);
	}

	remove(doctype, name) {
		return this.must("DELETE", this.resource(doctype, name));
	}
}

/** Creates the desk user, or resets its name, password, roles and enabled flag; never a System Manager. */
async function ensureUser(api, email, firstName, lastName, password) {
	const user = {
		email,
		first_name: firstName,
		last_name: lastName,
		enabled: 1,
		user_type: "System User",
		send_welcome_email: 0,
		new_password: password,
		roles: [{ role: VIEWER_ROLE }],
	};
	if (await api.exists("User", email)) {
		const { send_welcome_email, email: _email, ...changes } = user;
		await api.update("User", email, changes);
	} else {
		await api.insert("User", user);
	}
	const saved = await api.exists("User", email);
	const roles = saved.roles.map((r) => r.role);
	check(saved.user_type === "System User", `${email} is a ${saved.user_type}, not a System User`);
	check(!roles.includes("System Manager"), `${email} must not be a System Manager`);
	check(saved.enabled, `${email} is disabled`);
}

/**
 * Leaves nothing behind that acts: the rules (one would alert on every ToDo allocated to anyone),
 * the channel, the ToDos; the users keep no password this script knows and are disabled
 * (Frappe refuses to disable a user while Administrator is the only System Manager: then the
 * random password alone locks them). Each failure is reported and counts as a failed step.
 */
async function cleanUp(api) {
	const problems = [];
	const attempt = async (what, fn) => {
		try {
			await fn();
		} catch (e) {
			problems.push(`${what}: ${e.message.split("\n")[0]}`);
		}
	};
	for (const rule of [RULE, BELL_RULE]) {
		await attempt(`delete rule ${rule}`, async () => {
			if (await api.exists("Realtime Rule", rule)) await api.remove("Realtime Rule", rule);
		});
	}
	await attempt(`delete channel ${CHANNEL}`, async () => {
		if (await api.exists("Realtime Channel", CHANNEL)) await api.remove("Realtime Channel", CHANNEL);
	});
	await attempt("delete the E2E ToDos", async () => {
		for (const todo of await api.list("ToDo", [["description", "like", "%E2E%"], ["allocated_to", "=", VIEWER]])) {
			await api.remove("ToDo", todo.name);
		}
	});
	const locked = [];
	for (const user of [VIEWER, POSTER, OUTSIDER]) {
		await attempt(`lock user ${user}`, async () => {
			if (!(await api.exists("User", user))) return;
			await api.update("User", user, { new_password: `${crypto.randomBytes(24).toString("base64")}!a1A` });
			const disabled = await api.call("PUT", api.resource("User", user), { enabled: 0 });
			locked.push(disabled.ok ? `${user} (disabled)` : `${user} (password only: ${disabled.body.exc_type || disabled.status})`);
		});
	}
	if (locked.length) console.log(`cleanup: rules, channel and ToDos deleted; users locked: ${locked.join(", ")}`);
	results.push({ name: "cleanup", ok: !problems.length });
	for (const problem of problems) console.log(`FAIL cleanup: ${problem}`);
}

// ----------------------------------------------------------------------------- desk helpers

async function waitDesk(page) {
	await page.waitForFunction(() => window.frappe && frappe.boot && frappe.boot.user && window.cur_page !== undefined, null, {
		timeout: T,
	});
}

async function waitSocket(page, label) {
	await poll(
		() => page.evaluate(() => !!(window.frappe && frappe.realtime && frappe.realtime.socket && frappe.realtime.socket.connected)),
		{ message: `the socket of ${label} to connect` }
	);
	await poll(() => page.evaluate(() => !!(window.rt_studio && rt_studio.runtime && rt_studio.runtime.started)), {
		message: `the RT Studio runtime of ${label} to start`,
	});
}

function control(scope, fieldname) {
	return scope.locator(`.frappe-control[data-fieldname="${fieldname}"]:visible`).first();
}

/** Types into a Link/Autocomplete input and picks the suggestion whose text contains `pick`. */
async function typeAndPick(page, input, text, pick) {
	await input.click();
	await input.fill("");
	await input.pressSequentially(text, { delay: 30 });
	// Link fields list <div role="option"> items, Autocomplete fields <li> items.
	const item = page.locator(".awesomplete ul:not([hidden]) > *", { hasText: pick }).first();
	await item.waitFor({ state: "visible", timeout: T });
	await item.click();
}

/** Alerts (frappe.show_alert) currently on screen, as {text, html, imgs}. */
function alerts(page) {
	return page.evaluate(() =>
		[...document.querySelectorAll("#alert-container .alert-message")].map((el) => ({
			text: el.textContent,
			html: el.innerHTML,
			imgs: el.querySelectorAll("img").length,
			bolds: [...el.querySelectorAll("b, strong")].map((b) => b.textContent),
		}))
	);
}

/** Messages of our rule the page's RT Studio runtime received, whose subject contains `needle`. */
function received(page, needle) {
	return page.evaluate(
		([rule, needle]) =>
			rt_studio.runtime.console.entries.filter((e) => e.rule === rule && String(e.message.subject).includes(needle)),
		[RULE, needle]
	);
}

/** Waits for an alert whose text contains `needle` (a string) or equals it (`{ exact }`). */
async function waitAlert(page, needle, timeout = 10000) {
	const match = typeof needle === "string" ? (t) => t.includes(needle) : (t) => t.trim() === needle.exact;
	return poll(async () => (await alerts(page)).find((a) => match(a.text)), {
		timeout,
		interval: 100,
		message: `an alert containing ${JSON.stringify(needle)}`,
	});
}

/** The topmost open dialog. */
function topDialog(page) {
	return page.locator(".modal.show").last();
}

async function loginUI(page, usr, pwd) {
	await page.goto(`${opts.url}/login`, { waitUntil: "domcontentloaded" });
	await page.fill("#login_email", usr);
	await page.fill("#login_password", pwd);
	await page.locator("form.form-login .btn-login, .btn-login:not(.btn-ldap-login)").first().click();
	await page.waitForURL(/\/app(\/|$|\?)/, { timeout: T });
	await waitDesk(page);
}

/**
 * Whether browsers must connect to socket.io directly (port socketio_port) rather than through
 * the site's origin: a bench served by gunicorn alone has nothing on <origin>/socket.io/;
 * behind nginx (production) or `bench start` the origin path or dev_server works.
 */
async function socketDirect() {
	if (opts.socketio !== "auto") return opts.socketio === "direct";
	const ctx = await request.newContext();
	try {
		const r = await ctx.get(`${opts.url}/socket.io/?EIO=4&transport=polling`, { timeout: 5000 });
		return !(r.ok() && (await r.text()).includes('"sid"'));
	} catch (_) {
		return true;
	} finally {
		await ctx.dispose();
	}
}

// ----------------------------------------------------------------------------- the test

(async () => {
	fs.mkdirSync(opts.out, { recursive: true });
	if (opts.docs) fs.mkdirSync(opts.docs, { recursive: true });
	const browser = await chromium.launch({
		executablePath: opts.chromium,
		headless: !opts.headed,
		args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
	});
	const viewport = { width: 1440, height: 1000 };
	const direct = await socketDirect();
	if (direct) console.log("note: no socket.io behind --url (no proxy in front of the bench): the desk connects straight to socketio_port");
	const newContext = async () => {
		const ctx = await browser.newContext({ viewport });
		// The desk connects to <origin>/socket.io unless window.dev_server is set, then to
		// frappe.boot.socketio_port on the same host (what `bench start` setups do). Pin it.
		if (direct) {
			await ctx.addInitScript(() =>
				Object.defineProperty(window, "dev_server", { configurable: true, get: () => 1, set: () => {} })
			);
		}
		return ctx;
	};
	let api, ctxA, ctxB, ctxC, ctxD, pageA, pageB, pageC, pageD;
	const state = {};

	try {
		await step("1. setup: viewer user, no leftover rule, ToDo cleanup", async () => {
			api = await Api.login(opts.url, "Administrator", opts.password);
			const setup = await api.must(
				"GET",
				"/api/method/frappe.client.get_single_value?doctype=System%20Settings&field=setup_complete"
			);
			check(Number(setup) === 1, "the site's setup wizard is not completed: open /app as Administrator and complete it first");

			for (const rule of [RULE, BELL_RULE]) {
				if (await api.exists("Realtime Rule", rule)) await api.remove("Realtime Rule", rule);
			}
			// Tidiness only: ToDos of earlier runs do not change the outcome.
			for (const todo of await api.list("ToDo", [["description", "like", "%E2E%"], ["allocated_to", "=", VIEWER]])) {
				await api.remove("ToDo", todo.name).catch((e) => console.log(`note: could not delete ToDo ${todo.name}: ${e.message}`));
			}

			await ensureUser(api, VIEWER, "E2E", "Viewer", VIEWER_PASSWORD);
		});
		if (!results[0].ok) throw new Error("setup failed: the site is not usable, later steps skipped");

		ctxA = await newContext();
		pageA = await ctxA.newPage();
		watch(pageA, "A");

		await step("2. Administrator (context A) creates the rule through the form, saves with Ctrl+S", async () => {
			await loginUI(pageA, "Administrator", opts.password);
			await pageA.goto(`${opts.url}/app/realtime-rule/new`);
			await pageA.waitForFunction(() => window.cur_frm && cur_frm.doctype === "Realtime Rule" && cur_frm.is_new(), null, {
				timeout: T,
			});
			const form = pageA.locator(".page-container:visible .form-layout");

			await control(form, "rule_name").locator("input").fill(RULE);
			await typeAndPick(pageA, control(form, "document_type").locator("input"), "ToDo", "ToDo");
			await pageA.waitForFunction(() => cur_frm.doc.document_type === "ToDo", null, { timeout: T });
			await control(form, "event").locator("select").selectOption("New");
			// The form loads ToDo's meta, then offers its user fields in the audience rows.
			await pageA.waitForFunction(
				() => (cur_frm.fields_dict.audience.grid.docfields.find((d) => d.fieldname === "user_field").options || []).length,
				null,
				{ timeout: T }
			);

			// Audience: one row, User Field allocated_to (edited in the row's full form). The table
			// is mandatory, so a new rule starts with one blank row: use it, add one only if missing.
			if (!(await pageA.evaluate(() => (cur_frm.doc.audience || []).length))) {
				await control(form, "audience").locator(".grid-add-row").click();
			}
			const row = control(form, "audience").locator('.grid-row[data-idx="1"]');
			await row.locator(".btn-open-row").first().click();
			const rowForm = pageA.locator(".grid-row-open");
			await rowForm.waitFor({ state: "visible", timeout: T });
			await control(rowForm, "audience_type").locator("select").selectOption("User Field");
			await control(rowForm, "user_field").waitFor({ state: "visible", timeout: T });
			await typeAndPick(pageA, control(rowForm, "user_field").locator("input"), "allocated_to", "allocated_to");
			await pageA.waitForFunction(() => (cur_frm.doc.audience || [])[0]?.user_field === "allocated_to", null, {
				timeout: T,
			});
			await rowForm.locator(".grid-collapse-row").first().click();

			await control(form, "subject").locator("input").fill("{{ doc.description }}");
			await control(form, "display").locator("select").selectOption("Alert");
			await control(form, "rule_name").locator("input").click(); // move focus off the last field
			await pageA.waitForFunction(() => cur_frm.doc.subject === "{{ doc.description }}", null, { timeout: T });

			await pageA.keyboard.press("Control+s");
			await pageA.waitForFunction(
				(rule) => window.cur_frm && cur_frm.doc.name === rule && !cur_frm.is_new() && !cur_frm.is_dirty(),
				RULE,
				{ timeout: T }
			);
			await pageA.waitForURL(/\/app\/realtime-rule\/E2E/, { timeout: T });
			const saved = await api.exists("Realtime Rule", RULE);
			check(saved, "the rule is not in the database after Ctrl+S");
			check(saved.document_type === "ToDo" && saved.event === "New", `saved as ${saved.document_type}/${saved.event}`);
			check(
				saved.audience.length === 1 &&
					saved.audience[0].audience_type === "User Field" &&
					saved.audience[0].user_field === "allocated_to",
				`audience saved as ${JSON.stringify(saved.audience)}`
			);
			check(saved.subject === "{{ doc.description }}", `subject saved as ${saved.subject}`);
			await pageA.waitForTimeout(800); // let the recent-activity section render
			await shot(pageA, "02-rule-form-saved", { fullPage: true });
			// the README's picture of the form: from the page head down to the subject
			await pageA.evaluate(() => window.scrollTo(0, 0));
			const subjectBox = await control(form, "subject").boundingBox();
			await docShot(pageA, "rule-form", { x: 0, y: 0, width: viewport.width, height: subjectBox.y + subjectBox.height + 24 });
		});

		await step("3. Preview on a ToDo allocated to the viewer lists the viewer: deliver", async () => {
			const todo = await api.insert("ToDo", { description: "E2E preview target", allocated_to: VIEWER });
			state.todo = todo.name;
			await pageA.locator('.page-actions button[data-label="Preview"]:visible').first().click();
			const pick = topDialog(pageA);
			await pick.locator(".modal-title", { hasText: "Preview" }).waitFor({ timeout: T });
			await pick.locator('[data-fieldname="docname"] input').fill(todo.name);
			await pick.locator('[data-fieldname="docname"] input').press("Tab");
			await pageA.waitForTimeout(400);
			// the link field's search results may still open over the button: click the button itself
			await pick.locator(".btn-modal-primary, .modal-footer .btn-primary").first().dispatchEvent("click");
			const table = pageA.locator(".modal.show table.rt-recipients");
			await table.waitFor({ state: "visible", timeout: T });
			const viewerRow = table.locator("tbody tr", { hasText: VIEWER });
			check((await viewerRow.count()) === 1, `the preview does not list ${VIEWER}`);
			const verdict = (await viewerRow.locator("td").nth(2).innerText()).trim();
			check(verdict === "deliver", `verdict for the viewer is ${JSON.stringify(verdict)}, not "deliver"`);
			const subject = await viewerRow.locator(".rt-subject").innerText();
			check(subject.includes("E2E preview target"), `rendered subject is ${JSON.stringify(subject)}`);
			await pageA.waitForTimeout(300);
			await shot(pageA, "03-preview-dialog");
			await docShot(pageA, "preview-dialog", pageA.locator(".modal.show .modal-content").last());
			await pageA.keyboard.press("Escape");
			await pageA.locator(".modal.show").first().waitFor({ state: "detached", timeout: 5000 }).catch(() => {});
		});

		await step("4. Test Fire > To Me shows the alert in context A", async () => {
			await waitSocket(pageA, "context A");
			await pageA.locator('.inner-group-button[data-label="Test%20Fire"] > button:visible').first().click();
			await pageA.locator('.inner-group-button[data-label="Test%20Fire"] .dropdown-item[data-label="To%20Me"]:visible').first().click();
			const pick = topDialog(pageA);
			await pick.locator(".modal-title", { hasText: "Test Fire" }).waitFor({ timeout: T });
			const input = pick.locator('[data-fieldname="docname"] input');
			if (!(await input.inputValue())) await input.fill(state.todo);
			await pick.locator(".btn-modal-primary, .modal-footer .btn-primary").first().dispatchEvent("click");
			// Our rule has no message, so the alert is the subject alone (other rules on the site
			// may alert about the same ToDo with other text).
			await waitAlert(pageA, { exact: "E2E preview target" });
			await waitAlert(pageA, "Sent to 1 recipient");
			check((await received(pageA, "E2E preview target")).length >= 1, "A's runtime logged no message of the rule");
			await pageA.locator(".modal.show").first().waitFor({ state: "detached", timeout: 5000 }).catch(() => {});
			await pageA.waitForTimeout(700); // the alert slides in
			await shot(pageA, "04-test-fire-to-me");
		});

		ctxB = await newContext();
		pageB = await ctxB.newPage();
		watch(pageB, "B");

		await step("5. the viewer (context B) sees a live alert when Administrator creates a ToDo for them", async () => {
			await loginUI(pageB, VIEWER, VIEWER_PASSWORD);
			await pageB.goto(`${opts.url}/app`);
			await waitDesk(pageB);
			const whoami = await pageB.evaluate(() => frappe.session.user);
			check(whoami === VIEWER, `context B is ${whoami}`);
			await waitSocket(pageB, "context B");
			await pageB.waitForTimeout(500); // socket rooms are joined right after connect
			await api.insert("ToDo", { description: "E2E hello", allocated_to: VIEWER });
			const alert = await waitAlert(pageB, "E2E hello", 8000);
			check(alert.text.trim() === "E2E hello", `alert text is ${JSON.stringify(alert.text)}`);
			check((await received(pageB, "E2E hello")).length === 1, "B's runtime did not log exactly one message of the rule");
			// Other rules of the site may alert Administrator; this one must not (exclude_actor).
			check(!(await received(pageA, "E2E hello")).length, "the actor (Administrator) got this rule's message too");
			await pageB.waitForTimeout(700); // the alert slides in
			await shot(pageB, "05-viewer-live-alert");
			await docShot(pageB, "live-alert", { x: 0, y: 0, ...viewport }, { keepAlerts: true });
		});

		await step("6. an HTML-laden description shows as text in B and runs nothing", async () => {
			await pageB.evaluate(() => delete window.__xss);
			const todo = await api.insert("ToDo", { description: XSS, allocated_to: VIEWER });
			// Frappe's own HTML sanitizer may normalise the stored description; the alert must
			// show whatever was stored, as text.
			const stored = (await api.exists("ToDo", todo.name)).description;
			const alert = await waitAlert(pageB, "E2E xss", 8000);
			await pageB.waitForTimeout(1000); // an onerror handler would have run by now; the alert has slid in
			check(alert.text.includes("<img src="), `alert text does not show the markup literally: ${JSON.stringify(alert.text)}`);
			if (stored.includes("<img src=x ")) {
				check(alert.text.includes("<img src=x"), `alert text ${JSON.stringify(alert.text)} lacks "<img src=x"`);
			}
			check(alert.imgs === 0, "an <img> element was created inside the alert");
			const imgsInAlerts = await pageB.evaluate(() => document.querySelectorAll("#alert-container img").length);
			check(imgsInAlerts === 0, `${imgsInAlerts} <img> element(s) in #alert-container`);
			const xss = await pageB.evaluate(() => typeof window.__xss);
			check(xss === "undefined", `window.__xss is ${xss}: the handler ran`);
			state.xss = { stored, shown: alert.text };
			await shot(pageB, "06-viewer-xss-literal");
		});

		await step("7. Realtime Studio page: preview, live console, recent evaluations; rule list", async () => {
			await pageA.goto(`${opts.url}/app/realtime-studio/${encodeURIComponent(RULE)}`);
			await pageA.locator(".rt-studio").waitFor({ state: "visible", timeout: T });
			await waitSocket(pageA, "context A (studio)");
			const studio = pageA.locator(".rt-studio:visible");
			const ruleInput = control(studio, "rule").locator("input");
			await poll(async () => (await ruleInput.inputValue()) === RULE, { message: "the rule field to be filled from the route" });
			await poll(() => pageA.evaluate(() => !!cur_page.page.realtime_studio?.rule_doctype), {
				message: "the studio to learn the rule's DocType",
			});
			const docInput = control(studio, "docname").locator("input");
			await docInput.fill(state.todo);
			await docInput.press("Tab");
			await pageA.waitForTimeout(400);

			// Test fire first (the console and the evaluations then have something to show), then
			// Preview, so the screenshot shows the preview of the viewer's delivery.
			await studio.locator("button", { hasText: "Test Fire to Me" }).click();
			await waitAlert(pageA, { exact: "E2E preview target" });
			const consoleRow = studio.locator(".rt-console-table tbody tr", { hasText: RULE }).first();
			await consoleRow.waitFor({ state: "visible", timeout: T });
			check((await consoleRow.innerText()).includes("E2E preview target"), "console row lacks the message");
			const summary = studio.locator(".rt-preview-result .rt-preview-summary");
			await poll(async () => (await summary.count()) && (await summary.innerText()).includes(state.todo), {
				message: "the test-fire summary to name the document",
			});
			// The page refreshes its evaluations 500 ms after a test fire; other activity on the
			// site adds rows too, so look for the test fire's own row.
			const testRow = studio
				.locator(".rt-evaluations table.rt-activity tbody tr", { hasText: state.todo })
				.filter({ has: pageA.locator(".indicator-pill", { hasText: /^test$/ }) })
				.first();
			await poll(
				async () => {
					if (await testRow.count()) return true;
					await pageA.waitForTimeout(700);
					if (await testRow.count()) return true;
					await studio.locator(".rt-section", { hasText: "Recent Evaluations" }).locator("button", { hasText: "Refresh" }).click();
					return false;
				},
				{ message: "the test fire in recent evaluations" }
			);
			const evalText = await testRow.innerText();
			check(/\bfired\b/.test(evalText) && !/not fired/.test(evalText), `test fire evaluation reads ${JSON.stringify(evalText)}`);

			await studio.locator("button", { hasText: /^Preview$/ }).click();
			const table = studio.locator(".rt-preview-result table.rt-recipients");
			await poll(async () => (await table.locator("tbody tr", { hasText: VIEWER }).count()) === 1, {
				message: "the studio preview to list the viewer",
			});
			const verdict = (await table.locator("tbody tr", { hasText: VIEWER }).locator("td").nth(2).innerText()).trim();
			check(verdict === "deliver", `studio preview verdict for the viewer is ${JSON.stringify(verdict)}`);
			// Alerts are position: fixed and would cover the tables in a full-page screenshot.
			await pageA.evaluate(() => document.querySelectorAll("#alert-container .alert").forEach((el) => el.remove()));
			await pageA.waitForTimeout(300);
			await shot(pageA, "07-realtime-studio", { fullPage: true });
			await pageA.evaluate(() => window.scrollTo(0, 0));
			const height = await pageA.evaluate(() => document.documentElement.scrollHeight);
			await docShot(pageA, "realtime-studio", { x: 0, y: 0, width: viewport.width, height });

			await pageA.goto(`${opts.url}/app/realtime-rule`);
			const listRow = pageA.locator(".list-row-container", { hasText: RULE }).first();
			await listRow.waitFor({ state: "visible", timeout: T });
			const status = (await listRow.locator(".indicator-pill").first().innerText()).trim();
			check(status === "Enabled", `list status of the rule is ${JSON.stringify(status)}`);
			await shot(pageA, "07b-rule-list");
		});

		await step("8. a member (context C) posts to #e2e-ops from the channel form: the viewer sees it as text, the outsider nothing", async () => {
			await ensureUser(api, POSTER, "E2E", "Poster", POSTER_PASSWORD);
			await ensureUser(api, OUTSIDER, "E2E", "Outsider", OUTSIDER_PASSWORD);
			const channel = {
				channel_name: CHANNEL,
				enabled: 1,
				description: "RT Studio browser e2e test channel",
				members: [
					{ member_type: "User", user: VIEWER },
					{ member_type: "User", user: POSTER },
				],
				publish_roles: [],
				reference_doctype: null,
				reference_name: null,
				event_name: CHANNEL_EVENT,
				rate_limit_count: 0,
			};
			if (await api.exists("Realtime Channel", CHANNEL)) {
				const { channel_name, ...changes } = channel;
				await api.update("Realtime Channel", CHANNEL, changes);
			} else {
				await api.insert("Realtime Channel", channel);
			}
			const saved = await api.exists("Realtime Channel", CHANNEL);
			const members = saved.members.map((m) => `${m.member_type}:${m.user || m.role}`).sort();
			check(
				JSON.stringify(members) === JSON.stringify([`User:${POSTER}`, `User:${VIEWER}`]),
				`channel members saved as ${JSON.stringify(members)}`
			);
			check(!saved.publish_roles.length && saved.enabled, "the channel has publish roles or is disabled");

			ctxC = await newContext();
			pageC = await ctxC.newPage();
			watch(pageC, "C");
			ctxD = await newContext();
			pageD = await ctxD.newPage();
			watch(pageD, "D");
			await Promise.all([
				loginUI(pageC, POSTER, POSTER_PASSWORD),
				loginUI(pageD, OUTSIDER, OUTSIDER_PASSWORD).then(async () => {
					await pageD.goto(`${opts.url}/app`);
					await waitDesk(pageD);
				}),
			]);
			check((await pageC.evaluate(() => frappe.session.user)) === POSTER, "context C is not the poster");
			check((await pageD.evaluate(() => frappe.session.user)) === OUTSIDER, "context D is not the outsider");
			await waitSocket(pageD, "context D");
			await waitSocket(pageB, "context B");

			await pageC.goto(`${opts.url}/app/realtime-channel/${CHANNEL}`);
			await pageC.waitForFunction((name) => window.cur_frm && cur_frm.doctype === "Realtime Channel" && cur_frm.doc.name === name, CHANNEL, {
				timeout: T,
			});
			await waitSocket(pageC, "context C");
			await pageC.waitForTimeout(500); // socket rooms are joined right after connect
			const seenD = await pageD.evaluate(() => rt_studio.runtime.console.entries.length);
			const seenB = await pageB.evaluate(() => rt_studio.runtime.console.entries.length);

			await pageC.locator(".page-actions button:visible", { hasText: "Post Message" }).first().click();
			const dialog = topDialog(pageC);
			await dialog.locator(".modal-title", { hasText: `Post to ${CHANNEL}` }).waitFor({ timeout: T });
			await dialog.locator('[data-fieldname="message"] textarea').fill(POST_TEXT);
			await pageC.waitForTimeout(300);
			await shot(pageC, "08-poster-post-dialog");
			await dialog.locator(".btn-modal-primary, .modal-footer .btn-primary").first().click();
			const posted = await waitAlert(pageC, "Posted to");
			check(/Posted to 2 member/.test(posted.text), `the poster's confirmation reads ${JSON.stringify(posted.text)}`);
			const postedAt = Date.now();

			const alert = await waitAlert(pageB, `#${CHANNEL}`, 8000);
			check(alert.text.includes(POST_TEXT), `the viewer's alert reads ${JSON.stringify(alert.text)}, not the literal ${JSON.stringify(POST_TEXT)}`);
			// The runtime writes the channel name in bold itself; the message must add no element.
			check(
				JSON.stringify(alert.bolds) === JSON.stringify([`#${CHANNEL}`]),
				`bold elements in the alert: ${JSON.stringify(alert.bolds)} (the message's <b> must stay text)`
			);
			const entries = await pageB.evaluate(
				([seen, channel]) => rt_studio.runtime.console.entries.slice(0, rt_studio.runtime.console.entries.length - seen).filter((e) => e.channel === channel),
				[seenB, CHANNEL]
			);
			check(entries.length === 1, `B's runtime logged ${entries.length} message(s) of the channel`);
			check(entries[0].message.actor === POSTER, `the message's actor is ${entries[0].message.actor}`);
			await pageB.waitForTimeout(700); // the alert slides in
			await shot(pageB, "08b-viewer-channel-alert");

			// The outsider: nothing within 3 s of the post.
			await pageD.waitForTimeout(Math.max(0, 3000 - (Date.now() - postedAt)));
			const leaked = await pageD.evaluate(
				([seen, channel]) =>
					rt_studio.runtime.console.entries
						.slice(0, rt_studio.runtime.console.entries.length - seen)
						.filter((e) => e.channel === channel || JSON.stringify(e.message).includes("ops ready")),
				[seenD, CHANNEL]
			);
			check(!leaked.length, `the outsider received ${leaked.length} message(s) of the channel`);
			const alertsD = (await alerts(pageD)).filter((a) => a.text.includes(CHANNEL) || a.text.includes("ops ready"));
			check(!alertsD.length, `the outsider sees an alert: ${JSON.stringify(alertsD[0] && alertsD[0].text)}`);
			await shot(pageD, "08c-outsider-nothing");
		});

		await step("9. the outsider (context D) may neither open e2e-ops nor see it in the channel list", async () => {
			await pageD.goto(`${opts.url}/app/realtime-channel/${CHANNEL}`);
			// getdoc answers 403; the desk says so in a "Not permitted" message, the form stays empty.
			const refusal = pageD.locator(".modal.show .msgprint, .modal.show .modal-title, .page-container:visible .msg-box");
			await poll(
				async () => {
					const texts = await refusal.allInnerTexts();
					return texts.some((t) => /not permitted|insufficient permission/i.test(t));
				},
				{ message: "a Not permitted / Insufficient Permission message" }
			);
			const loaded = await pageD.evaluate((name) => !!(window.frappe && frappe.get_doc("Realtime Channel", name)), CHANNEL);
			check(!loaded, "the channel document reached the outsider's browser");
			const rest = await pageD.evaluate(async (name) => {
				const r = await fetch(`/api/resource/Realtime%20Channel/${encodeURIComponent(name)}`, { headers: { Accept: "application/json" } });
				return r.status;
			}, CHANNEL);
			check(rest === 403, `GET /api/resource/Realtime Channel/${CHANNEL} as the outsider: HTTP ${rest}, not 403`);
			await pageD.waitForTimeout(300);
			await shot(pageD, "09-outsider-not-permitted");
			await pageD.keyboard.press("Escape");
			await pageD.locator(".modal.show").first().waitFor({ state: "detached", timeout: 5000 }).catch(() => {});

			const listed = pageD.waitForResponse((r) => r.url().includes("frappe.desk.reportview.get") && r.request().method() === "POST", {
				timeout: T,
			});
			await pageD.goto(`${opts.url}/app/realtime-channel`);
			const response = await listed;
			check(response.ok(), `the list request failed: HTTP ${response.status()}`);
			await pageD.waitForFunction(() => window.cur_list && cur_list.doctype === "Realtime Channel", null, { timeout: T });
			await pageD.waitForTimeout(600); // the rows render
			const body = await response.json();
			// reportview.get answers {keys, values} compressed, or an empty list when nothing matches.
			const answer = body.message || [];
			const names = Array.isArray(answer)
				? answer.map((r) => r.name)
				: answer.values.map((v) => v[answer.keys.indexOf("name")]);
			check(!names.includes(CHANNEL), `the list answer names ${CHANNEL}`);
			const rows = await pageD.locator(".list-row-container", { hasText: CHANNEL }).count();
			check(rows === 0, `the outsider's list shows ${rows} row(s) of ${CHANNEL}`);
			const shownToMember = await pageC.evaluate(
				(name) => frappe.xcall("frappe.client.get_list", { doctype: "Realtime Channel", filters: { name }, fields: ["name"] }),
				CHANNEL
			);
			check(shownToMember.length === 1, "the same list query does not give the channel to its member (poster)");
			await shot(pageD, "09b-outsider-channel-list");
		});

		await step("10. display Notification Log: the viewer's bell updates live (E2E bell rule)", async () => {
			const rule = {
				rule_name: BELL_RULE,
				enabled: 1,
				document_type: "ToDo",
				event: "New",
				condition: "",
				audience: [{ audience_type: "User Field", user_field: "allocated_to" }],
				exclude_actor: 1,
				subject: "E2E bell: {{ doc.description }}",
				message: "",
				display: "Notification Log",
				indicator: "blue",
				event_name: "rt_studio",
				rate_limit_count: 0,
			};
			try {
				if (await api.exists("Realtime Rule", BELL_RULE)) {
					const { rule_name, ...changes } = rule;
					await api.update("Realtime Rule", BELL_RULE, changes);
				} else {
					await api.insert("Realtime Rule", rule);
				}

				await waitSocket(pageB, "context B");
				const bell = pageB.locator(".navbar .dropdown-notifications:visible").first();
				const icon = bell.locator(".notifications-icon");
				const unseen = icon.locator(".notifications-unseen");
				await icon.waitFor({ state: "visible", timeout: T });
				// Start from "seen": opening the dropdown marks the notifications seen.
				if (await unseen.isVisible()) {
					await icon.click();
					await pageB.waitForTimeout(500);
					await icon.click();
					await poll(async () => !(await unseen.isVisible()), { message: "the bell to show no unseen notifications" });
				}

				const description = `E2E bell ${Date.now().toString(36)}`;
				const subject = `E2E bell: ${description}`;
				await api.insert("ToDo", { description, allocated_to: VIEWER });
				// Frappe's "notification" event (published after the Notification Log commits)
				// turns the bell on and prepends the item to the dropdown: no reload.
				await poll(async () => await unseen.isVisible(), { message: "the unseen indicator on the bell" });
				const item = bell.locator(".panel-notifications .notification-item", { hasText: subject });
				await poll(async () => (await item.count()) === 1, { message: `the dropdown to list ${JSON.stringify(subject)}` });
				const logged = await api.list("Notification Log", [["for_user", "=", VIEWER], ["subject", "like", `%${description}%`]], ["name", "document_type"]);
				check(logged.length === 1 && logged[0].document_type === "ToDo", `Notification Logs for the ToDo: ${JSON.stringify(logged)}`);
				const entry = await pageB.evaluate((rule) => rt_studio.runtime.console.entries.find((e) => e.rule === rule), BELL_RULE);
				check(entry && entry.message.display === "Notification Log", "B's runtime did not log the rule's message");
				const alerted = (await alerts(pageB)).filter((a) => a.text.includes(subject));
				check(!alerted.length, "display Notification Log also showed an alert");

				await icon.click();
				await item.waitFor({ state: "visible", timeout: T });
				check(await item.evaluate((el) => el.classList.contains("unread")), "the new item is not marked unread");
				await pageB.waitForTimeout(400);
				await shot(pageB, "10-viewer-bell-dropdown");
				await pageB.keyboard.press("Escape");
			} finally {
				if (await api.exists("Realtime Rule", BELL_RULE).catch(() => false)) await api.remove("Realtime Rule", BELL_RULE);
			}
			check(!(await api.exists("Realtime Rule", BELL_RULE)), `${BELL_RULE} was not deleted`);
		});
	} catch (e) {
		results.push({ name: "harness", ok: false });
		console.log(`FAIL ${e.message}`);
	} finally {
		await browser.close().catch(() => {});
		if (api) {
			await cleanUp(api);
			await api.ctx.dispose().catch(() => {});
		}
	}

	if (state.xss) console.log(`note: XSS description stored as ${JSON.stringify(state.xss.stored)}, alert showed ${JSON.stringify(state.xss.shown)}`);
	if (pageErrors.length) {
		console.log(`browser errors (${pageErrors.length}, not failures by themselves):`);
		for (const e of [...new Set(pageErrors)].slice(0, 20)) console.log(`  ${e}`);
	}
	console.log(`screenshots: ${shots.length ? shots.join(", ") : "none"}`);
	const failed = results.filter((r) => !r.ok);
	console.log(failed.length ? `FAILED ${failed.length} of ${results.length} steps` : `ALL ${results.length} STEPS PASSED`);
	process.exit(failed.length ? 1 : 0);
})().catch((e) => {
	console.error(`FAIL harness: ${e && e.stack ? e.stack : e}`);
	process.exit(1);
});
