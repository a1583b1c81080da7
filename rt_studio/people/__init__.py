"""Who the users are and what they may read: the Frappe side of the engine's Directory.

`site` implements the engine's interfaces with Frappe calls (FrappeDirectory, FrappeMeta, the
site's clock and budget); `users` and `readers` answer for thousands of users at once, exactly
as Frappe would one by one; `permissions` holds the channel permission hooks and who manages.
"""
