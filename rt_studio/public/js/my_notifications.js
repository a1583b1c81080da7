// "My realtime notifications": what reached me lately, what I muted; mute and unmute.
// Every call changes the session user's own mutes only (rt_studio.mutes on the server).

import { MUTE_CHOICES, escapeHtml, sanitizeHtml } from "./runtime/logic.js";

function target_label(target) {
	return target.rule ? __("rule {0}", [escapeHtml(target.rule)]) : __("channel #{0}", [escapeHtml(target.channel)]);
}

export function mute(target, choice) {
	return frappe
		.xcall("rt_studio.api.mute", { rule: target.rule, channel: target.channel, minutes: choice.minutes })
		.then(() => {
			const how = choice.minutes ? __("for {0}", [__(choice.label)]) : __("until you unmute it");
			frappe.show_alert(
				{
					message: __("Muted {0} {1}", [target_label(target), how]),
					subtitle: `<a data-action="rt_undo_mute">${__("Undo")}</a>`,
					indicator: "orange",
				},
				7,
				{ rt_undo_mute: () => unmute(target) }
			);
		});
}

export function unmute(target) {
	return frappe.xcall("rt_studio.api.unmute", { rule: target.rule, channel: target.channel }).then(() => {
		frappe.show_alert({ message: __("Unmuted {0}", [target_label(target)]), indicator: "green" }, 5);
	});
}

function until_text(until) {
	return until ? __("until {0}", [frappe.datetime.str_to_user(until)]) : __("until you unmute it");
}

function mute_buttons(index) {
	return MUTE_CHOICES.map(
		(choice, i) =>
			`<button class="btn btn-xs btn-default rt-mute" data-index="${index}" data-choice="${i}">${__(choice.label)}</button>`
	).join(" ");
}

function rows_html(data) {
	const muted = new Map(data.mutes.map((m) => [m.rule ? `r:${m.rule}` : `c:${m.channel}`, m]));
	const recent = data.recent.map((r) => ({ ...r, mute: muted.get(r.rule ? `r:${r.rule}` : `c:${r.channel}`) }));
	for (const m of data.mutes) {
		if (!recent.some((r) => r.mute === m)) recent.push({ rule: m.rule, channel: m.channel, count: 0, mute: m, critical: m.critical });
	}
	if (!recent.length) return { html: `<p class="text-muted">${__("No realtime notifications reached you lately, and you muted none.")}</p>`, entries: [] };
	const rows = recent.map((entry, index) => {
		const name = entry.rule ? escapeHtml(entry.rule) : `#${escapeHtml(entry.channel)}`;
		let state;
		if (entry.critical) state = `<span class="indicator-pill red">${__("critical: always delivered")}</span>`;
		else if (entry.mute) state = `<span class="indicator-pill gray">${__("muted")} ${escapeHtml(until_text(entry.mute.until))}</span> <button class="btn btn-xs btn-default rt-unmute" data-index="${index}">${__("Unmute")}</button>`;
		else state = `${__("Mute")}: ${mute_buttons(index)}`;
		return `<tr data-index="${index}">
			<td>${name}<div class="text-muted small">${sanitizeHtml(entry.last_subject || "")}</div></td>
			<td class="text-right">${entry.count || ""}</td>
			<td>${state}</td>
		</tr>`;
	});
	return {
		html: `<table class="table table-sm rt-my-notifications"><thead><tr>
			<th>${__("Rule or channel")}</th><th class="text-right">${__("Lately")}</th><th>${__("Mute")}</th>
		</tr></thead><tbody>${rows.join("")}</tbody></table>`,
		entries: recent,
	};
}

export function my_notifications() {
	const dialog = new frappe.ui.Dialog({
		title: __("My realtime notifications"),
		size: "large",
		fields: [{ fieldtype: "HTML", fieldname: "list" }],
	});
	const render = () =>
		frappe.xcall("rt_studio.api.my_notifications").then((data) => {
			const { html, entries } = rows_html(data);
			const $list = dialog.fields_dict.list.$wrapper.html(html);
			const target = (button) => {
				const entry = entries[Number(button.dataset.index)];
				return entry.rule ? { rule: entry.rule } : { channel: entry.channel };
			};
			$list.find(".rt-mute").on("click", (e) =>
				mute(target(e.currentTarget), MUTE_CHOICES[Number(e.currentTarget.dataset.choice)]).then(render)
			);
			$list.find(".rt-unmute").on("click", (e) => unmute(target(e.currentTarget)).then(render));
		});
	render();
	dialog.show();
	return dialog;
}

/** An entry in the user menu (the avatar dropdown) that opens the list. */
export function add_menu_item() {
	const $menu = $("#toolbar-user");
	if (!$menu.length || $menu.find(".rt-my-notifications-item").length) return;
	const $item = $(
		`<button class="btn-reset dropdown-item rt-my-notifications-item">${__("My realtime notifications")}</button>`
	).on("click", () => my_notifications());
	const $settings = $menu.find('[href="/app/user"], [href*="/app/user/"]').first();
	if ($settings.length) $item.insertAfter($settings);
	else $item.prependTo($menu);
	$(`<a class="dropdown-item rt-my-preferences-item" href="/app/my-notification-preferences">${__("My notification preferences")}</a>`).insertAfter($item);
}
