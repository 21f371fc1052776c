"""CpuSet: kernel/libvirt list syntax, sysfs hex masks, algebra, and clean InputErrors on garbage."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmtune.cpuset import MAX_CPU, CpuSet
from vmtune.errors import InputError

cpu_ids = st.integers(min_value=0, max_value=MAX_CPU)
cpu_sets = st.frozensets(st.integers(min_value=0, max_value=4095), max_size=300)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", set()),
        ("  \n", set()),
        ("0", {0}),
        ("0-3", {0, 1, 2, 3}),
        ("0-3,8", {0, 1, 2, 3, 8}),
        (" 0 - 2 , 5 ", {0, 1, 2, 5}),
        ("0-7,^2", {0, 1, 3, 4, 5, 6, 7}),
        ("0-7,^2-3,^6", {0, 1, 4, 5, 7}),
        ("^2,0-3", {0, 1, 3}),  # libvirt applies exclusions after all inclusions
        ("0-15:2/4", {0, 1, 4, 5, 8, 9, 12, 13}),  # kernel bitmap_parselist stride groups
        ("3\x00\x00\x00", {3}),  # NUL padding of old dumps
        ("1,1,1", {1}),
    ],
)
def test_parse_list(text: str, expected: set[int]) -> None:
    assert set(CpuSet.parse(text)) == expected


@pytest.mark.parametrize(
    ("mask", "expected"),
    [
        ("f", {0, 1, 2, 3}),
        ("00000000,0000000f", {0, 1, 2, 3}),
        ("3", {0, 1}),
        ("ff,ffffffff", set(range(40))),  # top word only as wide as needed (bitmap_string)
        ("80000000,00000001", {0, 63}),
        ("0x10", {4}),
        ("00000000,00000000,00000000,00000000,00000000,000aaaa0\x00\x00", {5, 7, 9, 11, 13, 15, 17, 19}),
        ("", set()),
    ],
)
def test_parse_mask(mask: str, expected: set[int]) -> None:
    assert set(CpuSet.parse_mask(mask)) == expected


def test_parse_mask_4096_bits_with_nul_padding() -> None:
    words = ["00000000"] * 128
    words[-1] = "00000003"
    words[0] = "80000000"
    s = CpuSet.parse_mask(",".join(words) + "\n\x00\x00")
    assert set(s) == {0, 1, 4095}


@pytest.mark.parametrize(
    "text",
    ["a", "1-", "-1", "3-1", "1,,2", "0-3:0/4", "0-3:5/4", "1.5", "٣", "9999999", "^", "0-3:2"],
)
def test_parse_garbage_is_input_error(text: str) -> None:
    with pytest.raises(InputError):
        CpuSet.parse(text, what="cpuN/topology/core_cpus_list")


@pytest.mark.parametrize("mask", ["xyz", "ff,,ff", "123456789,00000000", "ff,zz", "f" * 5000])
def test_parse_mask_garbage_is_input_error(mask: str) -> None:
    with pytest.raises(InputError):
        CpuSet.parse_mask(mask)


def test_error_names_the_source() -> None:
    with pytest.raises(InputError, match=r"^/sys/x/cpulist: "):
        CpuSet.parse("1-x", what="/sys/x/cpulist")


def test_canonical_form_and_helpers() -> None:
    s = CpuSet.parse("8,0-3,10-11,2")
    assert str(s) == "0-3,8,10-11"
    assert list(s.ranges()) == [(0, 3), (8, 8), (10, 11)]
    assert s.first() == 0 and s.last() == 11 and len(s) == 7
    assert str(s.take(5)) == "0-3,8"
    assert CpuSet().first() == -1 and str(CpuSet()) == ""
    assert s.to_mask(64) == "00000000,00000d0f"
    assert CpuSet.range(4, 2) == CpuSet()
    assert 3 in s and 4 not in s and "3" not in s and -1 not in s


def test_immutable_and_hashable() -> None:
    s = CpuSet([1, 2])
    with pytest.raises(AttributeError):
        s._bits = 0  # type: ignore[misc]
    assert {s: 1}[CpuSet.parse("1-2")] == 1


def test_out_of_range_ids() -> None:
    with pytest.raises(InputError):
        CpuSet([MAX_CPU + 1])
    with pytest.raises(InputError):
        CpuSet.from_bits(-1)


@given(cpu_sets)
def test_list_round_trip(cpus: frozenset[int]) -> None:
    s = CpuSet(cpus)
    assert CpuSet.parse(str(s)) == s
    assert set(s) == cpus


@given(cpu_sets, st.integers(min_value=32, max_value=4096))
def test_mask_round_trip_at_any_width(cpus: frozenset[int], width: int) -> None:
    s = CpuSet(c for c in cpus if c < width)
    mask = s.to_mask(width)
    assert len(mask.split(",")) == (width + 31) // 32
    assert CpuSet.parse_mask(mask) == s
    assert CpuSet.parse_mask(mask + "\n\x00\x00\x00") == s


@given(cpu_sets, cpu_sets)
def test_algebra_matches_python_sets(a: frozenset[int], b: frozenset[int]) -> None:
    x, y = CpuSet(a), CpuSet(b)
    assert set(x | y) == a | b
    assert set(x & y) == a & b
    assert set(x - y) == a - b
    assert set(x ^ y) == a ^ b
    assert x.isdisjoint(y) == a.isdisjoint(b)
    assert x.issubset(y) == (a <= b)
    assert x.issuperset(y) == (a >= b)
    assert (x == y) == (a == b)
    assert len(x) == len(a)
    assert bool(x) == bool(a)
    assert x.union(y, x) == CpuSet(a | b)


@given(cpu_sets, st.frozensets(st.integers(min_value=0, max_value=4095), max_size=20))
def test_exclusions(a: frozenset[int], b: frozenset[int]) -> None:
    text = ",".join([str(CpuSet(a)) or "0", *(f"^{c}" for c in sorted(b))])
    expected = (a or {0}) - b
    assert set(CpuSet.parse(text)) == expected


@given(st.text(max_size=40))
def test_garbage_list_never_raises_anything_but_input_error(text: str) -> None:
    with contextlib.suppress(InputError):
        CpuSet.parse(text)


@given(st.text(alphabet="0123456789abcdefABCDEFx,\x00 \n-^:/", max_size=60))
def test_garbage_mask_never_raises_anything_but_input_error(text: str) -> None:
    with contextlib.suppress(InputError):
        CpuSet.parse_mask(text)


@given(st.text(max_size=40))
def test_garbage_mask_any_text(text: str) -> None:
    with contextlib.suppress(InputError):
        CpuSet.parse_mask(text)


def test_any_cpu_libvirt_accepts_in_a_domain_parses() -> None:
    # libvirt's VIR_DOMAIN_CPUMASK_LEN is 16384; its cputune-cpuset-big-id test pins to CPU 16383
    assert CpuSet.parse("0,16383", what="/domain/cputune/vcpupin/@cpuset") == CpuSet([0, 16383])
    with pytest.raises(InputError):
        CpuSet.parse("16384", what="/domain/cputune/vcpupin/@cpuset")
