"""The hook's world: one file lock, the tenants libvirt keeps on disk, CPU claims, hugepage journal.

The hook runs inside libvirtd's start/migrate path, so it must not open a libvirt connection (the
daemon holds the domain's job lock and a callback into it deadlocks). Instead:

* tenants are the running guests' status files ``/run/libvirt/qemu/<name>.xml`` (``<domstatus>``);
* a guest being started or migrated in has no status file yet, so the hook records its own *claim*
  (the domain XML it let through) under ``<state>/claims/``; the next hook sees it as a tenant. This is
  what keeps N guests started in parallel off each other's CPUs. A claim dies at ``release end``, or
  when it is older than ``CLAIM_TTL`` and libvirt never wrote a status file (a start that failed
  before ``prepare``, a migration that was cancelled);
* hugepage reservations are journalled in ``<state>/hugepages/<name>.json`` *before* the sysfs write,
  so a hook that crashed halfway is undone by the next run (``sweep``).

Everything runs under one ``flock`` on ``<state>/hook.lock``: read tenants, decide, claim, release.
All paths are parameters (``HookPaths``) so tests run against temp directories.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vmtune.errors import InfeasibleError, InputError, VmtuneError

if (
    TYPE_CHECKING
):  # annotations only: the hook's no-op runs (started/stopped) import nothing of the core model
    from vmtune.core.guest import GuestSpec

__all__ = [
    "CLAIM_TTL",
    "HookPaths",
    "HugepageGrant",
    "drop_claim",
    "hook_lock",
    "live_names",
    "read_tenants",
    "release_hugepages",
    "reserve_hugepages",
    "sweep",
    "write_claim",
]

CLAIM_TTL = 600.0
"""Seconds a claim without a status file stays valid (libvirt's own start timeout is shorter)."""
LOCK_WAIT = 60.0
"""Seconds the hook waits for its lock: a holder that waits on libvirtd in turn (a tool defining a guest
while libvirtd runs this hook) must end in a refused start, never in a hung daemon."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HookPaths:
    status_dir: Path = Path("/run/libvirt/qemu")
    state_dir: Path = Path("/run/vmtune")
    """Lock, claims and hugepage journal. /run is right: a reboot resets both guests and hugepages."""
    sysfs_root: Path = Path("/")
    domcaps: Path | None = Path("/var/cache/vmtune/domcapabilities.xml")
    """`vmtune hook install --connect URI` saves domcapabilities here; the hook cannot ask libvirt."""
    cgroup_root: Path = Path("/sys/fs/cgroup")
    host_groups: tuple[str, ...] = ("system.slice", "user.slice", "init.scope")
    """The host's own cgroups ``--isolate-host`` confines, relative to ``cgroup_root``."""
    procfs_root: Path = Path("/proc")
    systemd_dir: Path = Path("/run/systemd/system")
    """Exists when systemd runs (``sd_booted``): then v2 units are confined through ``systemctl``."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HookPaths:
        base = cls()
        dc = env.get("VMTUNE_HOOK_DOMCAPS")
        return cls(
            status_dir=Path(env.get("VMTUNE_HOOK_STATUS_DIR", str(base.status_dir))),
            state_dir=Path(env.get("VMTUNE_HOOK_STATE_DIR", str(base.state_dir))),
            sysfs_root=Path(env.get("VMTUNE_HOOK_SYSFS", str(base.sysfs_root))),
            domcaps=base.domcaps if dc is None else (Path(dc) if dc else None),
            cgroup_root=Path(env.get("VMTUNE_HOOK_CGROUP_ROOT", str(base.cgroup_root))),
            host_groups=tuple(
                g.strip()
                for g in env.get("VMTUNE_HOOK_HOST_GROUPS", ",".join(base.host_groups)).split(",")
                if g.strip()
            ),
            procfs_root=Path(env.get("VMTUNE_HOOK_PROCFS", str(base.procfs_root))),
            systemd_dir=Path(env.get("VMTUNE_HOOK_SYSTEMD_DIR", str(base.systemd_dir))),
        )

    @property
    def claims(self) -> Path:
        return self.state_dir / "claims"

    @property
    def journal(self) -> Path:
        return self.state_dir / "hugepages"


@contextlib.contextmanager
def hook_lock(paths: HookPaths) -> Iterator[None]:
    """Exclusive ``flock`` for the whole decide-and-claim step (released when the process dies, too)."""
    try:
        paths.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(paths.state_dir / "hook.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as err:
        raise VmtuneError(f"{paths.state_dir}/hook.lock: cannot open: {err.strerror or err}") from None
    try:
        _wait_for_lock(fd, paths, LOCK_WAIT)
        yield
    finally:
        os.close(fd)  # closing drops the flock


def _wait_for_lock(fd: int, paths: HookPaths, limit: float) -> None:
    deadline = time.monotonic() + limit
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise VmtuneError(
                    f"{paths.state_dir}/hook.lock: held by another vmtune for {limit:g} s; refusing rather "
                    "than blocking libvirtd"
                ) from None
            time.sleep(0.05)


def _status_files(paths: HookPaths) -> dict[str, Path]:
    try:
        return {p.stem: p for p in sorted(paths.status_dir.glob("*.xml"))}
    except OSError:
        return {}


def _live_claims(paths: HookPaths, now: float) -> list[Path]:
    """Claims younger than ``CLAIM_TTL``: guests the hook let through that are still starting."""
    out: list[Path] = []
    for path in sorted(paths.claims.glob("*.xml")) if paths.claims.is_dir() else ():
        try:
            if now - path.stat().st_mtime <= CLAIM_TTL:
                out.append(path)
        except OSError:
            continue
    return out


def live_names(paths: HookPaths, *, now: float | None = None) -> frozenset[str]:
    """Guests libvirt runs (status files) or the hook let through and that are still starting (claims)."""
    now = time.time() if now is None else now
    return frozenset(_status_files(paths)) | {p.stem for p in _live_claims(paths, now)}


def read_tenants(paths: HookPaths, *, now: float | None = None) -> tuple[GuestSpec, ...]:
    """Running guests (status files) plus live claims of guests still starting, by name.

    A claim of a guest that has a status file already is left out (``same_guest``: the status file speaks
    for it). A file that does not parse is skipped: one broken file must not block every other start.
    """
    from vmtune.adapters.files import read_bytes
    from vmtune.core.ledger.tenant import same_guest  # lazily: started/stopped runs need no core model
    from vmtune.xmlmap.guest import read_guest
    from vmtune.xmlmap.live import read_status

    now = time.time() if now is None else now
    running: list[GuestSpec] = []
    for path in _status_files(paths).values():
        with contextlib.suppress(InputError):
            running.append(read_status(read_bytes(path), source=str(path)).guest)
    starting: list[GuestSpec] = []
    for path in _live_claims(paths, now):
        with contextlib.suppress(InputError):
            claim = read_guest(read_bytes(path), source=str(path))
            if not any(same_guest(claim, r) for r in running):
                starting.append(claim)
    return tuple(sorted((*running, *starting), key=lambda g: g.name))


def check_private(path: Path, *, folder: bool) -> None:
    """InputError when ``path`` (a state folder or journal of the hook) could have been written by another
    user, or is not a plain folder/file (a symlink): the hook undoes host changes from what it reads there,
    so it acts on nothing it cannot trust. A missing path is fine."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as err:
        raise InputError(
            f"{path}: cannot inspect ({err.strerror or err}); the hook's state needs root"
        ) from None
    kind_ok = stat.S_ISDIR(st.st_mode) if folder else stat.S_ISREG(st.st_mode)
    if not kind_ok or st.st_uid != os.geteuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise InputError(
            f"{path}: owned by uid {st.st_uid} with mode {stat.S_IMODE(st.st_mode):o}, or not a plain "
            f"{'folder' if folder else 'file'}; refusing to act on a journal another user could write"
        )


def _safe_name(name: str) -> str:
    if not name or "/" in name or name.startswith(".") or "\x00" in name:
        raise InputError(f"hook: guest name {name!r} cannot be a file name")
    return name


def write_claim(paths: HookPaths, name: str, xml: bytes) -> None:
    from vmtune.adapters.files import atomic_write

    paths.claims.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write(paths.claims / f"{_safe_name(name)}.xml", xml, mode=0o600)


def drop_claim(paths: HookPaths, name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (paths.claims / f"{_safe_name(name)}.xml").unlink()


# -- hugepages ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class HugepageGrant:
    node: int
    size_kib: int
    pages: int
    """Pages this guest needs on the node."""
    added: int = 0
    """How many vmtune added to ``nr_hugepages`` (0 when enough were free already)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Journal:
    guest: str
    grants: tuple[HugepageGrant, ...] = field(default_factory=tuple)


def _hp_dir(paths: HookPaths, node: int, size_kib: int) -> Path:
    return paths.sysfs_root / f"sys/devices/system/node/node{node}/hugepages/hugepages-{size_kib}kB"


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError) as err:
        raise InfeasibleError(f"{path}: cannot read hugepage count: {err}") from None


def _write_int(path: Path, value: int) -> None:
    try:
        path.write_text(f"{value}\n")
    except OSError as err:
        raise InfeasibleError(f"{path}: cannot write {value}: {err.strerror or err}") from None


def _journal_path(paths: HookPaths, name: str) -> Path:
    return paths.journal / f"{_safe_name(name)}.json"


def _save(paths: HookPaths, journal: _Journal) -> None:
    from vmtune.adapters.files import atomic_write

    paths.journal.mkdir(mode=0o700, parents=True, exist_ok=True)
    body = {"guest": journal.guest, "grants": [
        {"node": g.node, "size_kib": g.size_kib, "pages": g.pages, "added": g.added} for g in journal.grants
    ]}  # fmt: skip
    atomic_write(_journal_path(paths, journal.guest), json.dumps(body, indent=1).encode(), mode=0o600)


def _load(path: Path) -> _Journal | None:
    try:
        body = json.loads(path.read_text())
        grants = tuple(
            HugepageGrant(
                node=int(g["node"]), size_kib=int(g["size_kib"]), pages=int(g["pages"]), added=int(g["added"])
            )
            for g in body["grants"]
        )
        return _Journal(guest=str(body["guest"]), grants=grants)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def reserve_hugepages(
    paths: HookPaths, name: str, wants: tuple[HugepageGrant, ...]
) -> tuple[HugepageGrant, ...]:
    """Make sure each node has ``pages`` free hugepages of ``size_kib`` for this guest, growing the pool.

    Journal first, then write ``nr_hugepages``, then read it back: the kernel grants fewer when memory
    is fragmented. On any shortfall every grant made so far is given back and InfeasibleError says
    needed vs. free on which node.
    """
    done: list[HugepageGrant] = []
    try:
        for want in wants:
            base = _hp_dir(paths, want.node, want.size_kib)
            free = _read_int(base / "free_hugepages")
            short = max(0, want.pages - free)
            grant = HugepageGrant(node=want.node, size_kib=want.size_kib, pages=want.pages, added=short)
            if short:
                _save(paths, _Journal(guest=name, grants=(*done, grant)))  # before the write: crash-safe
                total = _read_int(base / "nr_hugepages")
                _write_int(base / "nr_hugepages", total + short)
                got = _read_int(base / "nr_hugepages") - total
                if got < short:
                    grant = HugepageGrant(node=want.node, size_kib=want.size_kib, pages=want.pages, added=got)
                    done.append(grant)
                    raise InfeasibleError(
                        f"node {want.node} can't supply {want.pages} hugepages of {want.size_kib} KiB for "
                        f"'{name}': {free + got} free after growing the pool"
                    )
            done.append(grant)
        if any(g.added for g in done):
            _save(paths, _Journal(guest=name, grants=tuple(done)))
        return tuple(done)
    except BaseException:
        _give_back(paths, tuple(done))
        with contextlib.suppress(FileNotFoundError):
            _journal_path(paths, name).unlink()
        raise


def _give_back(paths: HookPaths, grants: tuple[HugepageGrant, ...]) -> None:
    for grant in grants:
        if not grant.added:
            continue
        nr = _hp_dir(paths, grant.node, grant.size_kib) / "nr_hugepages"
        with contextlib.suppress(InfeasibleError):
            _write_int(nr, max(0, _read_int(nr) - grant.added))


def release_hugepages(paths: HookPaths, name: str) -> tuple[HugepageGrant, ...]:
    """Undo what the journal says this guest added; no journal, nothing to do."""
    path = _journal_path(paths, name)
    for private, folder in ((paths.state_dir, True), (paths.journal, True), (path, False)):
        check_private(private, folder=folder)
    journal = _load(path)
    if journal is None:
        return ()
    _give_back(paths, journal.grants)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return journal.grants


def sweep(paths: HookPaths, *, now: float | None = None) -> tuple[str, ...]:
    """Release journalled hugepages and drop claims of guests that neither run nor are starting.

    Called at the start of every hook run (under the lock): this is what makes a crashed hook or a
    libvirtd that died before ``release end`` never leak a reservation for longer than ``CLAIM_TTL``.
    """
    now = time.time() if now is None else now
    running = set(_status_files(paths))
    swept: list[str] = []
    for path in sorted(paths.journal.glob("*.json")) if paths.journal.is_dir() else ():
        name = path.stem
        try:
            age = now - path.stat().st_mtime
        except OSError:
            continue
        if name not in running and age > CLAIM_TTL:
            release_hugepages(paths, name)
            swept.append(name)
    for path in sorted(paths.claims.glob("*.xml")) if paths.claims.is_dir() else ():
        with contextlib.suppress(OSError):
            if path.stem not in running and now - path.stat().st_mtime > CLAIM_TTL:
                path.unlink()
    return tuple(swept)
