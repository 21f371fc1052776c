"""The only lxml users: safe parsing, guest reading, plan application, capabilities, diff."""
