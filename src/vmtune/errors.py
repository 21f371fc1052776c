"""One exception tree; each class carries the process exit code DESIGN.md fixes.

::

    VmtuneError (1, unexpected / a bug in vmtune)
    ├── InputError (2)         bad input or usage; the message names the file, flag or XPath
    ├── InfeasibleError (3)    not enough free cores / memory / hugepages; says needed vs. free
    ├── LibvirtError (4)       a libvirt call failed; names the operation and the domain
    └── SchemaError (1)        vmtune produced XML that libvirt's schema rejects: a vmtune bug

Exit code 5 (``check`` found problems) is a result, not an error, so it has no class.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "ExitCode",
    "InfeasibleError",
    "InputError",
    "LibvirtError",
    "SchemaError",
    "VmtuneError",
    "in_file",
]


class ExitCode(IntEnum):
    OK = 0
    UNEXPECTED = 1
    BAD_INPUT = 2
    INFEASIBLE = 3
    LIBVIRT = 4
    FINDINGS = 5


class VmtuneError(Exception):
    """Base class; ``str(err)`` is the one line shown to the user."""

    exit_code: ExitCode = ExitCode.UNEXPECTED


class InputError(VmtuneError):
    exit_code = ExitCode.BAD_INPUT


class InfeasibleError(VmtuneError):
    exit_code = ExitCode.INFEASIBLE


class LibvirtError(VmtuneError):
    exit_code = ExitCode.LIBVIRT


class SchemaError(VmtuneError):
    exit_code = ExitCode.UNEXPECTED


def in_file(err: VmtuneError, source: str) -> VmtuneError:
    """``err`` with its message led by ``source`` (unless it already is): among many files, a message that
    names only the domain or a flag must still say which file it is about."""
    text = str(err)
    if text.startswith(source):
        return err
    return type(err)(f"{source}: {text}")
