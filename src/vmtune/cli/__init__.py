"""Thin typer wiring: gather via adapters -> decide in core -> show via render.

Each command lives in its own small module that exposes ``register(app)``; ``vmtune.cli.app`` builds the
app and is the one place where exceptions become exit codes.
"""

from __future__ import annotations

from vmtune.cli.app import app, main

__all__ = ["app", "main"]
