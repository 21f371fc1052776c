"""`make deb`, then install the .deb with apt (Debian's own dependencies) and run vmtune on /usr/bin/python3.

The test changes the system (installs, then purges the vmtune package), so it runs only as root where apt
and Debian's build tools are (``scripts/libvirt-up.sh --install-only`` installs them), never where a vmtune
package is already installed, and one run at a time (a lock file).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from vmtune import __version__

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
DIST_PACKAGES = "/usr/lib/python3/dist-packages/"


def _installed(package: str) -> bool:
    res = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False
    )
    return res.returncode == 0 and "install ok installed" in res.stdout


def _why_not() -> str | None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root: installs and purges the vmtune package"
    for tool in ("apt-get", "dpkg-query", "dpkg-buildpackage", "dh", "man"):
        if shutil.which(tool, path=SYSTEM_PATH) is None:
            return f"needs {tool} (Debian's build tools: scripts/libvirt-up.sh --install-only)"
    if _installed("vmtune"):
        return "a vmtune package is already installed here; not replacing it"
    return None


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=_why_not() or "")


def _system(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run with the system's PATH and Python only (no venv, no PYTHONPATH into this checkout)."""
    env = {"PATH": SYSTEM_PATH, "LC_ALL": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive", "COLUMNS": "100"}
    return subprocess.run(
        list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Build the .deb, install it with apt, yield a folder outside the checkout; purge it afterwards."""
    with open("/tmp/vmtune-deb.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        build = tmp_path_factory.mktemp("debbuild")
        made = _system("make", "deb", f"DEB_BUILD={build}", cwd=REPO)
        assert made.returncode == 0, made.stdout + made.stderr
        debs = sorted((REPO / "dist").glob(f"vmtune_{__version__}-*_all.deb"))
        assert len(debs) == 1, debs
        try:
            apt = _system("apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=600", str(debs[0]))
            assert apt.returncode == 0, apt.stdout + apt.stderr
            yield tmp_path_factory.mktemp("elsewhere")
        finally:
            purge = _system("apt-get", "purge", "-y", "-q", "-o", "DPkg::Lock::Timeout=600", "vmtune")
            assert purge.returncode == 0, purge.stdout + purge.stderr
            assert not _installed("vmtune")


def test_installed_package_runs_on_debian_python(installed: Path) -> None:
    assert Path("/usr/bin/vmtune").read_text().startswith("#!/usr/bin/python3\n")
    res = _system("/usr/bin/vmtune", "--version", cwd=installed)
    assert res.returncode == 0 and res.stdout == f"vmtune {__version__}\n", res.stderr
    # vmtune and its runtime dependencies come from Debian's packages, not from PyPI
    modules = "vmtune, typer, rich, lxml, click"
    code = f"import {modules}; print('\\n'.join(m.__file__ for m in ({modules})))"
    where = _system("/usr/bin/python3", "-c", code, cwd=installed)
    assert where.returncode == 0, where.stderr
    assert all(line.startswith(DIST_PACKAGES) for line in where.stdout.split()), where.stdout

    host = _system("/usr/bin/vmtune", "host", cwd=installed)
    assert host.returncode == 0 and "NUMA" in host.stdout + host.stderr, host.stdout + host.stderr
    plan = _system("/usr/bin/vmtune", "plan", str(REPO / "samples/xml/web01.xml"),
                   "--sysfs", str(REPO / "samples/hosts/dual-xeon-ht.tar.gz"), cwd=installed)  # fmt: skip
    assert plan.returncode == 0 and "<vcpupin" in plan.stdout, plan.stdout + plan.stderr
    hook = _system("/usr/bin/vmtune", "hook", "install", "--help", cwd=installed)
    assert hook.returncode == 0 and "Usage: vmtune hook" in hook.stdout, hook.stderr
    # the hook it installs runs Debian's python3 (what the package's postrm recognises on removal)
    hooks = installed / "hooks"
    done = _system("/usr/bin/vmtune", "hook", "install", "--dir", str(hooks), cwd=installed)
    assert done.returncode == 0, done.stderr
    assert "'/usr/bin/python3' -m vmtune.hook" in (hooks / "qemu.d" / "vmtune").read_text()


def test_installed_package_ships_man_page_completions_and_docs(installed: Path) -> None:
    man = _system("man", "-w", "vmtune")
    assert man.returncode == 0 and man.stdout.strip() == "/usr/share/man/man1/vmtune.1.gz", man.stderr
    page = _system("man", "-P", "cat", "vmtune")
    assert page.returncode == 0 and "EXIT STATUS" in page.stdout and "vmtune host snapshot" in page.stdout
    bash = Path("/usr/share/bash-completion/completions/vmtune")
    assert _system("bash", "-n", str(bash)).returncode == 0
    assert "complete -F _vmtune vmtune" in bash.read_text()
    assert Path("/usr/share/zsh/vendor-completions/_vmtune").read_text().startswith("#compdef vmtune\n")
    assert Path("/usr/share/doc/vmtune/hook.md").is_file()
    assert Path("/usr/share/doc/vmtune/isolation.md").is_file()
