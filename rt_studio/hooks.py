app_name = "rt_studio"
app_title = "RT Studio"
app_publisher = "RT Studio contributors"
app_description = "No-code realtime notifications: rules that push live messages to the right desks"
app_email = "rt-studio@example.com"
app_license = "mit"
required_apps = ["frappe"]
