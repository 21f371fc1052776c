"""libvirt hook entry (qemu.d): stdin XML -> stdout XML. Never opens a libvirt connection (being written)."""

from __future__ import annotations

__all__: list[str] = []
