"""parse_domcapabilities over this machine's capture, the hand-edited full set and the shared corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from testutil import DATA as TEST_DATA
from vmtune.errors import InputError
from vmtune.xmlmap.domcaps import parse_domcapabilities

DATA = TEST_DATA / "domcapabilities"

FULL = frozenset(
    ("relaxed", "vapic", "spinlocks", "vpindex", "runtime", "synic", "stimer", "reset", "vendor_id",
     "frequencies", "reenlightenment", "tlbflush", "ipi", "evmcs", "avic", "emsr_bitmap", "xmm_input")
)  # fmt: skip


def _parse(path: Path):  # type: ignore[no-untyped-def]
    return parse_domcapabilities(path.read_bytes(), path.name)


def test_this_machine_is_nested_kvm_with_two_enlightenments() -> None:
    caps = _parse(DATA / "this-machine-kvm.xml")
    assert caps.hyperv == {"spinlocks", "vendor_id"}
    assert caps.cpu_vendor == "AMD"
    assert caps.domain_type == "kvm"
    assert caps.iothreads is True
    assert caps.cpu_modes == {"host-passthrough", "maximum", "host-model", "custom"}
    assert caps.source == "this-machine-kvm.xml"
    assert (caps.emulator, caps.arch_capabilities) == ("/usr/bin/qemu-system-x86_64", True)


@pytest.mark.parametrize(
    ("features", "expected"),
    [
        ("<feature policy='require' name='arch-capabilities'/>", True),
        ("<feature policy='disable' name='arch-capabilities'/>", False),
        ("<feature policy='require' name='ssbd'/>", False),
    ],
    ids=["required", "disabled", "absent"],
)
def test_host_model_arch_capabilities(features: str, expected: bool) -> None:
    xml = (
        "<domainCapabilities><path>/usr/libexec/qemu-kvm</path><cpu><mode name='host-model' supported='yes'>"
        f"<model fallback='forbid'>EPYC</model>{features}</mode></cpu></domainCapabilities>"
    )
    caps = parse_domcapabilities(xml, "d.xml")
    assert (caps.arch_capabilities, caps.emulator) == (expected, "/usr/libexec/qemu-kvm")


def test_no_host_model_leaves_arch_capabilities_unknown() -> None:
    xml = "<domainCapabilities><cpu><mode name='host-model' supported='no'/></cpu></domainCapabilities>"
    caps = parse_domcapabilities(xml, "d.xml")
    assert (caps.arch_capabilities, caps.emulator) == (None, None)


def test_full_hyperv_fixture_lists_every_enlightenment() -> None:
    assert _parse(DATA / "full-hyperv.xml").hyperv == FULL


# (corpus file, domain type, host-model vendor, hyperv set or None = not reported, host-passthrough?)
CORPUS = [
    ("virt-manager/kvm-x86_64-domcaps-latest.xml", "kvm", "Intel", FULL - {"emsr_bitmap", "xmm_input"}, True),
    ("virt-manager/hvf-x86_64-domcaps.xml", "hvf", "Intel", {"spinlocks", "vendor_id"}, True),
    ("virt-manager/kvm-x86_64-domcaps-amd-sev.xml", "kvm", "AMD", None, True),
    ("virt-manager/qemu-riscv64-domcaps.xml", "qemu", None, None, False),
    ("virt-manager/kvm-aarch64-domcaps.xml", "kvm", None, None, True),
    ("libvirt/qemu_9.1.0-q35.x86_64.xml", "kvm", "AMD", FULL - {"evmcs"}, True),
    ("libvirt/qemu_9.1.0-tcg.x86_64.xml", "qemu", "AMD", FULL - {"evmcs"}, False),
    ("kubevirt/domcapabilities_tdx.xml", "kvm", "Intel", FULL, True),
    ("kubevirt/virsh_domcapabilities.xml", None, "Intel", None, True),
    ("vdsm/domcaps_libvirt_ppc64le.xml", "kvm", "IBM", None, True),
]


@pytest.mark.corpus
@pytest.mark.parametrize("case", CORPUS, ids=[c[0] for c in CORPUS])
def test_corpus_files(corpora: Path, case: tuple[str, str | None, str | None, set[str] | None, bool]) -> None:
    name, dtype, vendor, hyperv, passthrough = case
    caps = _parse(corpora / "domcapabilities" / name)
    assert caps.domain_type == dtype
    assert caps.cpu_vendor == vendor
    assert caps.hyperv == (frozenset(hyperv) if hyperv is not None else None)
    assert caps.cpu_modes is not None
    assert ("host-passthrough" in caps.cpu_modes) is passthrough


@pytest.mark.corpus
def test_every_corpus_file_parses(corpora: Path) -> None:
    files = sorted((corpora / "domcapabilities").rglob("*.xml"))
    assert len(files) == 19
    for path in files:
        caps = _parse(path)
        assert caps.cpu_modes, path


def test_hyperv_unsupported_is_an_empty_set_not_unknown() -> None:
    xml = "<domainCapabilities><features><hyperv supported='no'/></features></domainCapabilities>"
    caps = parse_domcapabilities(xml, "x.xml")
    assert caps.hyperv == frozenset()
    assert caps.cpu_modes is None
    assert caps.iothreads is None


def test_wrong_root_names_the_file() -> None:
    with pytest.raises(InputError, match=r"caps\.xml: root element is <capabilities>"):
        parse_domcapabilities("<capabilities/>", "caps.xml")


def test_malformed_names_file_and_line() -> None:
    with pytest.raises(InputError, match=r"d\.xml:2:\d+: malformed XML"):
        parse_domcapabilities("<domainCapabilities>\n<cpu></domainCapabilities>", "d.xml")
