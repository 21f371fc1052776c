"""Thin typer wiring: gather via adapters -> decide in core -> show via render.

Each command lives in its own small module that exposes ``register(app)``; this package builds the app
and owns the single translation of VmtuneError to exit codes (``main``).
"""

from __future__ import annotations

from vmtune.cli.app import app, main

__all__ = ["app", "main"]
