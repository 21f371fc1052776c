"""`vmtune check` (being written)."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("check")
    def check_cmd() -> None:
        """Not implemented yet."""
        raise typer.Exit(1)
