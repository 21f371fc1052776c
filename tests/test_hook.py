"""The libvirt hook (``vmtune.hook.run_hook``) against temp status dirs and generated sysfs trees.

libvirt's contract is argv ``GUEST OP SUBOP EXTRA`` + domain XML on stdin; stdout replaces the XML at
``migrate begin``/``restore begin``; non-zero at ``prepare begin`` refuses the start.
"""

from __future__ import annotations

import fcntl
import io
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lxml import etree

from sysfsgen import NAMED_HOSTS, write_sysfs
from vmtune.adapters import hookenv
from vmtune.adapters.hookenv import (
    CLAIM_TTL,
    HookPaths,
    HugepageGrant,
    release_hugepages,
    reserve_hugepages,
    sweep,
)
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError, VmtuneError
from vmtune.hook import run_hook

NS = "https://vmtune.dev/xmlns/1"


def domain_xml(
    name: str,
    *,
    vcpus: int = 2,
    pins: dict[int, str] | None = None,
    profile: str | None = "latency",
    extra: str = "",
    memory_mib: int = 1024,
) -> bytes:
    cputune = ""
    if pins:
        cputune = (
            "<cputune>"
            + "".join(f"<vcpupin vcpu='{v}' cpuset='{c}'/>" for v, c in pins.items())
            + "</cputune>"
        )
    meta = (
        f"<metadata><vmtune:tuning xmlns:vmtune='{NS}' profile='{profile}'{extra}/></metadata>"
        if profile
        else ""
    )
    return (
        f"<domain type='kvm'>\n  <name>{name}</name>\n  {meta}\n  <memory unit='MiB'>{memory_mib}</memory>\n"
        f"  <vcpu placement='static'>{vcpus}</vcpu>\n  {cputune}\n"
        "  <os><type arch='x86_64' machine='pc'>hvm</type></os>\n"
        "  <devices><memballoon model='none'/></devices>\n"
        "</domain>\n"
    ).encode()


def status_xml(domain: bytes, pid: int = 4242) -> bytes:
    return (
        b"<domstatus state='running' reason='booted' pid='%d'>\n<vcpus/>\n" % pid + domain + b"</domstatus>\n"
    )


@pytest.fixture
def env(tmp_path: Path) -> HookPaths:
    """A 64-CPU EPYC host (4 nodes, 2 CCX each) with empty status and state dirs."""
    write_sysfs(NAMED_HOSTS["epyc-2ccx-per-node"], tmp_path / "root")
    (tmp_path / "status").mkdir()
    return HookPaths(
        status_dir=tmp_path / "status",
        state_dir=tmp_path / "state",
        sysfs_root=tmp_path / "root",
        domcaps=None,
    )


def hook(paths: HookPaths, *argv: str, stdin: bytes = b"") -> tuple[int, bytes, str]:
    out, err = io.BytesIO(), io.StringIO()
    rc = run_hook(list(argv), io.BytesIO(stdin), out, err, paths=paths)
    return rc, out.getvalue(), err.getvalue()


def pins_of(xml: bytes) -> dict[int, CpuSet]:
    root = etree.fromstring(xml)
    return {int(p.get("vcpu")): CpuSet.parse(p.get("cpuset")) for p in root.iterfind("cputune/vcpupin")}


@pytest.mark.parametrize(
    ("op", "subop"),
    [
        ("start", "begin"),
        ("started", "begin"),
        ("stopped", "end"),
        ("reconnect", "begin"),
        ("attach", "begin"),
    ],
)
def test_other_ops_exit_0_silently(env: HookPaths, op: str, subop: str) -> None:
    assert hook(env, "g1", op, subop, "-", stdin=domain_xml("g1")) == (0, b"", "")


def test_guest_without_intent_is_left_alone(env: HookPaths) -> None:
    xml = domain_xml("plain", profile=None, pins={0: "0", 1: "1"})
    assert hook(env, "plain", "prepare", "begin", "-", stdin=xml) == (0, b"", "")
    assert hook(env, "plain", "migrate", "begin", "-", stdin=xml) == (0, b"", "")


def test_migrate_begin_replans_for_this_host(env: HookPaths) -> None:
    # pinned on the source host to CPUs this host doesn't have
    xml = domain_xml("mig", pins={0: "100", 1: "101"})
    rc, out, err = hook(env, "mig", "migrate", "begin", "-", stdin=xml)
    assert (rc, err) == (0, "")
    pins = pins_of(out)
    assert sorted(pins) == [0, 1]
    assert CpuSet().union(*pins.values()).issubset(CpuSet.range(0, 63))
    # the rewritten XML keeps the intent, so the next hook run re-plans with the same wishes
    assert f'xmlns:vmtune="{NS}"'.encode() in out or f"xmlns:vmtune='{NS}'".encode() in out


def test_migrate_begin_prints_nothing_when_nothing_changes(env: HookPaths) -> None:
    rc, first, _ = hook(env, "mig", "migrate", "begin", "-", stdin=domain_xml("mig", pins={0: "100"}))
    assert rc == 0 and first
    rc, second, err = hook(env, "mig", "restore", "begin", "-", stdin=first)
    assert (rc, second, err) == (0, b"", "")


def test_migrate_begin_avoids_running_guests(env: HookPaths) -> None:
    _, placed, _ = hook(env, "a", "migrate", "begin", "-", stdin=domain_xml("a", pins={0: "100", 1: "101"}))
    (env.status_dir / "a.xml").write_bytes(status_xml(placed))
    _, other, _ = hook(env, "b", "migrate", "begin", "-", stdin=domain_xml("b", pins={0: "100", 1: "101"}))
    a_cpus = CpuSet().union(*pins_of(placed).values())
    b_cpus = CpuSet().union(*pins_of(other).values())
    assert a_cpus and b_cpus and a_cpus.isdisjoint(b_cpus)


def test_prepare_begin_refuses_colliding_start(env: HookPaths) -> None:
    running = domain_xml("a", pins={0: "2", 1: "3"})
    (env.status_dir / "a.xml").write_bytes(status_xml(running))
    rc, out, err = hook(env, "b", "prepare", "begin", "-", stdin=domain_xml("b", pins={0: "2", 1: "3"}))
    assert rc == 3
    assert out == b""
    assert err.count("\n") == 1, err
    assert "refusing to start 'b'" in err and "VT104" in err


def test_shared_guests_share_a_pool_but_never_a_dedicated_cpu(env: HookPaths) -> None:
    shared = " cpu-policy='shared'"
    pool = dict.fromkeys(range(4), "4-7")
    (env.status_dir / "s1.xml").write_bytes(
        status_xml(domain_xml("s1", vcpus=4, pins=pool, profile="balanced", extra=shared))
    )
    # a second shared guest on the same pool time-shares it by design: the start goes on
    s2 = domain_xml("s2", vcpus=4, pins=pool, profile="balanced", extra=shared)
    assert hook(env, "s2", "prepare", "begin", "-", stdin=s2) == (0, b"", "")
    # a dedicated guest on a pool CPU is a collision, and so is a shared pool over a dedicated CPU
    rc, _, err = hook(env, "d", "prepare", "begin", "-", stdin=domain_xml("d", pins={0: "5"}))
    assert rc == 3 and "VT104" in err
    (env.status_dir / "d.xml").write_bytes(status_xml(domain_xml("d", pins={0: "9"})))
    s3 = domain_xml("s3", vcpus=2, pins=dict.fromkeys(range(2), "8-9"), profile="balanced", extra=shared)
    rc, _, err = hook(env, "s3", "prepare", "begin", "-", stdin=s3)
    assert rc == 3 and "VT104 shared pool CPUs 9 are pinned exclusively by d" in err


def test_prepare_begin_lets_disjoint_guest_start_and_claims_it(env: HookPaths) -> None:
    (env.status_dir / "a.xml").write_bytes(status_xml(domain_xml("a", pins={0: "2", 1: "3"})))
    assert hook(env, "b", "prepare", "begin", "-", stdin=domain_xml("b", pins={0: "4", 1: "5"})) == (
        0,
        b"",
        "",
    )
    assert (env.claims / "b.xml").is_file()
    # a third guest on b's CPUs is refused although b has no status file yet: the claim protects it
    rc, _, err = hook(env, "c", "prepare", "begin", "-", stdin=domain_xml("c", pins={0: "5"}))
    assert rc == 3 and "VT104" in err
    # release end drops the claim, then the start goes through
    assert hook(env, "b", "release", "end", "-", stdin=b"") == (0, b"", "")
    assert hook(env, "c", "prepare", "begin", "-", stdin=domain_xml("c", pins={0: "5"}))[0] == 0


@pytest.mark.parametrize(("op", "subop"), [("started", "begin"), ("stopped", "end"), ("release", "end")])
def test_claim_ends_when_libvirt_takes_over(env: HookPaths, op: str, subop: str) -> None:
    assert hook(env, "b", "prepare", "begin", "-", stdin=domain_xml("b", pins={0: "4"}))[0] == 0
    assert (env.claims / "b.xml").is_file()
    assert hook(env, "b", op, subop, "-", stdin=b"") == (0, b"", "")
    assert not (env.claims / "b.xml").exists()


def test_stale_claims_expire(env: HookPaths) -> None:
    assert hook(env, "b", "prepare", "begin", "-", stdin=domain_xml("b", pins={0: "4"}))[0] == 0
    old = time.time() - CLAIM_TTL - 5
    os.utime(env.claims / "b.xml", (old, old))
    assert hook(env, "c", "prepare", "begin", "-", stdin=domain_xml("c", pins={0: "4"}))[0] == 0


def test_bad_stdin_is_one_line_and_exit_2(env: HookPaths) -> None:
    rc, out, err = hook(env, "x", "migrate", "begin", "-", stdin=b"<domain><name>x</nam></domain>")
    assert rc == 2 and out == b""
    assert err.count("\n") == 1 and "malformed XML" in err


def test_usage_error(env: HookPaths) -> None:
    rc, _, err = hook(env, "only-a-name")
    assert rc == 2 and "usage" in err


# -- parallel --------------------------------------------------------------------------------------------


def test_16_parallel_migrations_get_disjoint_cpus(env: HookPaths) -> None:
    """16 hook processes at once (as libvirt runs them for 16 incoming guests): no CPU given twice."""
    hook_env = {
        **os.environ,
        "VMTUNE_HOOK_STATUS_DIR": str(env.status_dir),
        "VMTUNE_HOOK_STATE_DIR": str(env.state_dir),
        "VMTUNE_HOOK_SYSFS": str(env.sysfs_root),
        "VMTUNE_HOOK_DOMCAPS": "",
    }
    procs = []
    for i in range(16):
        name = f"par{i:02d}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "vmtune.hook", name, "migrate", "begin", "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=hook_env,
        )
        assert proc.stdin is not None
        proc.stdin.write(domain_xml(name, vcpus=2, pins={0: "200", 1: "201"}, profile="balanced"))
        proc.stdin.close()
        procs.append((name, proc))
    taken: dict[int, str] = {}
    for name, proc in procs:
        assert proc.stdout is not None and proc.stderr is not None
        with proc.stdout, proc.stderr:
            out, err = proc.stdout.read(), proc.stderr.read()
        assert proc.wait(timeout=120) == 0, err.decode()
        cpus = CpuSet().union(*pins_of(out).values())
        assert len(cpus) == 2
        for cpu in cpus:
            assert cpu not in taken, f"CPU {cpu} given to {taken.get(cpu)} and {name}"
            taken[cpu] = name
    assert len(taken) == 32


LEAN_PROBE = """
import io, sys
from vmtune.hook import run_hook
out = io.BytesIO()
rc = run_hook(sys.argv[1:], io.BytesIO(sys.stdin.buffer.read()), out, sys.stderr)
heavy = [m for m in ("rich", "typer", "vmtune.adapters.libvirt", "vmtune.core.planner") if m in sys.modules]
print(rc, " ".join(heavy) or "-")
"""


@pytest.mark.parametrize(
    ("argv", "loaded"),
    [(("g", "started", "begin", "-"), "-"), (("g", "migrate", "begin", "-"), "vmtune.core.planner")],
)
def test_hook_stays_lean(env: HookPaths, argv: tuple[str, ...], loaded: str) -> None:
    """No typer, rich or libvirt adapter on any run; the planner (through the service) only to re-plan."""
    hook_env = {**os.environ, "VMTUNE_HOOK_STATUS_DIR": str(env.status_dir),
                "VMTUNE_HOOK_STATE_DIR": str(env.state_dir), "VMTUNE_HOOK_SYSFS": str(env.sysfs_root),
                "VMTUNE_HOOK_DOMCAPS": ""}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", LEAN_PROBE, *argv], input=domain_xml("g"), env=hook_env,
                          capture_output=True, check=True)  # fmt: skip
    assert done.stdout.decode().split() == ["0", loaded]


def test_a_status_file_of_the_same_guest_is_not_a_rival(env: HookPaths) -> None:
    """The same guest (same UUID) already running under another name keeps its CPUs for itself."""
    uuid = b"<name>a</name><uuid>7b3c5a2e-0000-4000-8000-0000000000aa</uuid>"
    xml = domain_xml("a", pins={0: "100", 1: "101"}).replace(b"<name>a</name>", uuid)
    _, placed, _ = hook(env, "a", "migrate", "begin", "-", stdin=xml)
    assert placed
    (env.status_dir / "a-old.xml").write_bytes(status_xml(placed.replace(b"<name>a<", b"<name>a-old<")))
    (env.state_dir / "claims" / "a.xml").unlink()
    assert hook(env, "a", "migrate", "begin", "-", stdin=placed) == (0, b"", "")


# -- hugepages --------------------------------------------------------------------------------------------


def _hp(env: HookPaths, node: int, size: int = 2048) -> Path:
    return env.sysfs_root / f"sys/devices/system/node/node{node}/hugepages/hugepages-{size}kB"


def test_hugepage_reservation_is_journalled_and_released(env: HookPaths) -> None:
    hp = _hp(env, 1)
    hp.mkdir(parents=True, exist_ok=True)
    (hp / "nr_hugepages").write_text("10\n")
    (hp / "free_hugepages").write_text("4\n")
    grants = reserve_hugepages(env, "g", (HugepageGrant(node=1, size_kib=2048, pages=16),))
    assert grants == (HugepageGrant(node=1, size_kib=2048, pages=16, added=12),)
    assert (hp / "nr_hugepages").read_text().strip() == "22"
    assert (env.journal / "g.json").is_file()
    assert release_hugepages(env, "g") == grants
    assert (hp / "nr_hugepages").read_text().strip() == "10"
    assert not (env.journal / "g.json").exists()
    assert release_hugepages(env, "g") == ()


@pytest.mark.parametrize("forge", ["group-writable", "symlink"])
def test_a_hugepage_journal_another_user_could_write_is_refused(env: HookPaths, forge: str) -> None:
    """The release lowers nr_hugepages by what the journal says: a journal anyone but root could have
    written (or a symlink to one) is refused in one line and nothing is given back."""
    hp = _hp(env, 1)
    hp.mkdir(parents=True, exist_ok=True)
    (hp / "nr_hugepages").write_text("10\n")
    (hp / "free_hugepages").write_text("4\n")
    reserve_hugepages(env, "g", (HugepageGrant(node=1, size_kib=2048, pages=16),))
    journal = env.journal / "g.json"
    assert stat.S_IMODE(journal.stat().st_mode) == 0o600 and stat.S_IMODE(env.journal.stat().st_mode) == 0o700
    if forge == "group-writable":
        journal.chmod(0o664)
    else:
        real = env.state_dir / "elsewhere.json"
        journal.rename(real)
        journal.symlink_to(real)
    with pytest.raises(InputError, match="refusing to act on a journal another user could write"):
        release_hugepages(env, "g")
    assert (hp / "nr_hugepages").read_text().strip() == "22"


def test_hugepages_enough_free_adds_nothing(env: HookPaths) -> None:
    hp = _hp(env, 0)
    hp.mkdir(parents=True, exist_ok=True)
    (hp / "nr_hugepages").write_text("64\n")
    (hp / "free_hugepages").write_text("64\n")
    assert reserve_hugepages(env, "g", (HugepageGrant(node=0, size_kib=2048, pages=32),))[0].added == 0
    assert (hp / "nr_hugepages").read_text().strip() == "64"
    assert not (env.journal / "g.json").exists()


def test_crashed_reservation_is_swept(env: HookPaths) -> None:
    hp = _hp(env, 2)
    hp.mkdir(parents=True, exist_ok=True)
    (hp / "nr_hugepages").write_text("0\n")
    (hp / "free_hugepages").write_text("0\n")
    reserve_hugepages(env, "gone", (HugepageGrant(node=2, size_kib=2048, pages=8),))
    assert (hp / "nr_hugepages").read_text().strip() == "8"
    assert sweep(env) == ()  # young journal: the guest may still be starting
    old = time.time() - CLAIM_TTL - 5
    os.utime(env.journal / "gone.json", (old, old))
    assert sweep(env) == ("gone",)
    assert (hp / "nr_hugepages").read_text().strip() == "0"


def test_prepare_begin_reserves_explicit_hugepages(env: HookPaths) -> None:
    xml = domain_xml("hp", vcpus=1, pins={0: "8"}, extra=" hugepages='2M'", memory_mib=64).replace(
        b"<os>",
        b"<memoryBacking><hugepages/></memoryBacking>"
        b"<numatune><memory mode='strict' nodeset='1'/></numatune><os>",
    )
    hp = _hp(env, 1)
    (hp / "nr_hugepages").write_text("0\n")
    (hp / "free_hugepages").write_text("0\n")
    assert hook(env, "hp", "prepare", "begin", "-", stdin=xml) == (0, b"", "")
    assert (hp / "nr_hugepages").read_text().strip() == "32"  # 64 MiB / 2 MiB on node 1
    assert hook(env, "hp", "release", "end", "-", stdin=b"")[0] == 0
    assert (hp / "nr_hugepages").read_text().strip() == "0"


# -- hook install ----------------------------------------------------------------------------------------


def test_hook_install_is_idempotent_and_executable(tmp_path: Path) -> None:
    from vmtune.cli.app import main

    hooks = tmp_path / "hooks"
    assert main(["hook", "install", "--dir", str(hooks)]) == 0
    script = hooks / "qemu.d" / "vmtune"
    assert script.stat().st_mode & 0o777 == 0o755
    body = script.read_text()
    assert body.startswith("#!/bin/sh\n") and f"exec '{sys.executable}' -m vmtune.hook \"$@\"" in body
    mtime = script.stat().st_mtime_ns
    assert main(["hook", "install", f"--dir={hooks}"]) == 0
    assert script.stat().st_mtime_ns == mtime  # unchanged: not rewritten
    # the installed script really is a hook: libvirt's argv + stdin
    res = subprocess.run(
        [str(script), "g", "stopped", "end", "-"], input=b"", capture_output=True, check=False
    )
    assert (res.returncode, res.stdout, res.stderr) == (0, b"", b"")


def test_hook_install_rejects_unknown_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vmtune.cli.app import main

    assert main(["hook", "install", "--dri", str(tmp_path)]) == 2
    assert "unknown option --dri" in capsys.readouterr().err


def test_guest_named_install_is_still_a_hook_call(env: HookPaths) -> None:
    assert hook(env, "install", "started", "begin", "-", stdin=b"") == (0, b"", "")


def test_a_lock_held_too_long_refuses_instead_of_blocking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another holder of the hook's lock (say a tool waiting on libvirtd) ends in a refusal, not a hang."""
    paths = hookenv.HookPaths(state_dir=tmp_path / "state")
    paths.state_dir.mkdir()
    holder = os.open(paths.state_dir / "hook.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(holder, fcntl.LOCK_EX)
    monkeypatch.setattr(hookenv, "LOCK_WAIT", 0.2)
    try:
        with pytest.raises(VmtuneError, match=r"held by another vmtune for 0\.2 s"), hookenv.hook_lock(paths):
            pass
    finally:
        os.close(holder)
    with hookenv.hook_lock(paths):  # free again: taken at once
        pass
