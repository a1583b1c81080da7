// Pure logic of the RT Studio client runtime: no DOM, no frappe, so node's test runner
// covers it (tests/js). The desk glue lives in ../rt_studio.bundle.js.

export const DEFAULT_EVENTS = ["rt_studio", "rt_studio_channel"];
export const DISPLAYS = ["Alert", "Sticky", "Notification Log", "Refresh Form", "Refresh List", "Custom"];
export const INDICATORS = ["blue", "green", "orange", "red", "gray"];

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;", "`": "&#96;" };

/** Text as HTML that shows exactly that text. */
export function escapeHtml(value) {
	if (value === null || value === undefined) return "";
	return String(value).replace(/[&<>"'`]/g, (c) => ESCAPES[c]);
}

// Tags a rule author may use in subject and message; attributes are dropped except a safe href.
const ALLOWED_TAGS = new Set(["b", "strong", "i", "em", "u", "br", "p", "ul", "ol", "li", "code", "span", "small", "a"]);
const TAG = /<\/?([a-zA-Z][a-zA-Z0-9]*)\b([^<>]*)>/g;

function safeHref(attributes) {
	const match = /\shref\s*=\s*("([^"]*)"|'([^']*)'|([^\s>]+))/i.exec(" " + attributes);
	if (!match) return null;
	const href = (match[2] ?? match[3] ?? match[4] ?? "").trim();
	const plain = href.replace(/&#0*58;|&colon;/gi, ":").replace(/[\s\u0000-\u001f]/g, "");
	if (/^(https?:|mailto:|\/|#)/i.test(plain) || !/^[a-z][a-z0-9+.-]*:/i.test(plain)) {
		return escapeHtml(href);
	}
	return null;
}

/**
 * Markup from the server, reduced to a few harmless tags.
 *
 * The server already escapes document values in templates; this is the second line of
 * defence for what the rule's author typed: anything that is not an allowed tag (script,
 * img, event handlers, javascript: links) is shown as text, never run.
 */
export function sanitizeHtml(html) {
	if (html === null || html === undefined) return "";
	const source = String(html);
	let out = "";
	let last = 0;
	for (const match of source.matchAll(TAG)) {
		out += escapeText(source.slice(last, match.index));
		last = match.index + match[0].length;
		const name = match[1].toLowerCase();
		const closing = match[0].startsWith("</");
		if (!ALLOWED_TAGS.has(name)) {
			out += escapeHtml(match[0]);
		} else if (closing) {
			out += `</${name}>`;
		} else if (name === "a") {
			const href = safeHref(match[2]);
			out += href ? `<a href="${href}" rel="noopener noreferrer">` : "<a>";
		} else {
			out += `<${name}>`;
		}
	}
	return out + escapeText(source.slice(last));
}

// Text between tags: keep entities the server wrote, escape stray < and >.
function escapeText(text) {
	return text.replace(/&(?![a-zA-Z]+;|#[0-9]+;|#x[0-9a-fA-F]+;)/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** The title and body to show for a message, both safe to insert as HTML. */
export function describe(message) {
	const subject = sanitizeHtml(message.subject);
	const body = sanitizeHtml(message.message);
	if (message.channel) {
		const prefix = `<b>#${escapeHtml(message.channel)}</b>`;
		return { title: prefix, body: body || subject, text: `${prefix}: ${body || subject}` };
	}
	const title = subject || escapeHtml(message.rule || "");
	return { title, body, text: body && subject ? `${subject}: ${body}` : subject || body };
}

export function indicatorOf(message) {
	return INDICATORS.includes(message.indicator) ? message.indicator : "blue";
}

export function secondsOf(message) {
	const seconds = Number(message.alert_seconds);
	return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 120) : 5;
}

/**
 * What the desk should do with a message, given what the user is looking at.
 *
 * view: {route: ["Form", doctype, name] | ["List", doctype, ...] | [...], dirty: bool}
 * Returns {action, ...}: alert, sticky, bell, reload_form, form_banner, refresh_list,
 * or none (Custom, or a refresh for something not on screen).
 */
export function chooseAction(message, view = {}) {
	const route = view.route || [];
	const display = DISPLAYS.includes(message.display) ? message.display : "Alert";
	const onForm = route[0] === "Form" && route[1] === message.doctype && route[2] === message.docname;
	const onList = route[0] === "List" && route[1] === message.doctype;
	switch (display) {
		case "Custom":
			return { action: "none" };
		case "Sticky":
			return { action: "sticky" };
		case "Notification Log":
			return { action: "bell" };
		case "Refresh Form":
			if (!onForm) return { action: "none" };
			return view.dirty ? { action: "form_banner" } : { action: "reload_form" };
		case "Refresh List":
			return onList ? { action: "refresh_list" } : { action: "none" };
		default:
			return { action: "alert" };
	}
}

/**
 * Runs `fn` at most once per `wait` ms: the first call runs at once, calls during the wait
 * are folded into one trailing run. 100 saves in a burst refresh a list two or three times.
 */
export function createCoalescer(fn, wait, timers = { setTimeout, clearTimeout, now: Date.now }) {
	let lastRun = -Infinity;
	let pending = null;
	const run = () => {
		pending = null;
		lastRun = timers.now();
		fn();
	};
	return function trigger() {
		if (pending) return;
		const since = timers.now() - lastRun;
		if (since >= wait) {
			run();
		} else {
			pending = timers.setTimeout(run, wait - since);
		}
	};
}

/** A bounded, newest-first log of received messages for the studio's live console. */
export class ConsoleLog {
	constructor(limit = 200) {
		this.limit = limit;
		this.entries = [];
		this.listeners = new Set();
	}

	add(event, message, at = new Date()) {
		const entry = { at, event, rule: message.rule || null, channel: message.channel || null, message };
		this.entries.unshift(entry);
		if (this.entries.length > this.limit) this.entries.length = this.limit;
		for (const listener of this.listeners) listener(entry);
		return entry;
	}

	subscribe(listener) {
		this.listeners.add(listener);
		return () => this.listeners.delete(listener);
	}
}

/** Event names to listen on: the defaults plus those the site's rules and channels use. */
export function eventNames(configured) {
	const names = new Set(DEFAULT_EVENTS);
	for (const name of configured || []) {
		if (typeof name === "string" && /^[A-Za-z0-9_:.\-]{1,140}$/.test(name)) names.add(name);
	}
	return [...names];
}
