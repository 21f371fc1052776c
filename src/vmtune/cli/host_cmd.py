"""`vmtune host` (being written)."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("host")
    def host_cmd() -> None:
        """Not implemented yet."""
        raise typer.Exit(1)
