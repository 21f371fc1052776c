"""Pure core: topology model, guest spec, tuning intent, allocator, planner and audit rules.

Nothing in this package does IO, reads the environment or the clock, or logs: every decision is
returned as data with a Note saying why. import-linter enforces it (see pyproject.toml).
"""
