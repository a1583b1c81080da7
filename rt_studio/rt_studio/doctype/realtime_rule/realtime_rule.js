// Copyright (c) 2026, RT Studio contributors
// For license information, please see license.txt

// Desk features (preview, test fire, field pickers) come later.
frappe.ui.form.on("Realtime Rule", {});
