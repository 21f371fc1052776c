"""render.plain.Plain writes what make_console() would on a stream rich does not colour, byte for byte."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.text import Text

from vmtune.render.console import make_console
from vmtune.render.plain import Plain, rich_would_style

# the characters that make rich differ from the text: tabs, stripped controls, wide and zero-width cells
_TRICKY = st.sampled_from(
    ["\t", "\x07", "\x08", "\x1b", "\x00", " ", "~", "é", "界", "\u0301", "\u200b", "😀"]
)
_LINES = st.lists(st.one_of(st.characters(codec="utf-8"), _TRICKY), max_size=140)


def _rich(text: str, soft_wrap: bool, width: int | None = None) -> str:
    buf = io.StringIO()
    make_console(file=buf, width=width).print(Text(text), soft_wrap=soft_wrap)
    return buf.getvalue()


def _plain(text: str, soft_wrap: bool) -> str:
    buf = io.StringIO()
    Plain(buf).line(text, soft_wrap=soft_wrap)
    return buf.getvalue()


@settings(max_examples=300)
@given(chars=_LINES, soft_wrap=st.booleans())
def test_plain_line_is_what_rich_prints(chars: list[str], soft_wrap: bool) -> None:
    text = "".join(chars)
    if "\n" in text or any(c in text for c in "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"):
        text = " ".join(text.splitlines())  # callers pass lines (str.splitlines() of the diff)
    assert _plain(text, soft_wrap) == _rich(text, soft_wrap)


@pytest.mark.parametrize(
    ("text", "soft_wrap"),
    [
        ("\tindented <vcpu>4</vcpu>", True),
        ("+\t\t<vcpupin vcpu='0' cpuset='1'/>", True),
        ("x" * 99 + "\ty", True),
        ("a" * 100, False),  # exactly the width: one line
        ("a" * 101, False),  # wraps: rich decides where
        ("word " * 30, False),
        ("trailing   ", True),
        ("bell\x07 and \x1b[31m escape", True),
        ("界\tcell-counted tab stop", True),
    ],
)
def test_plain_line_examples(text: str, soft_wrap: bool) -> None:
    assert _plain(text, soft_wrap) == _rich(text, soft_wrap)


@pytest.mark.parametrize(
    ("env", "tty", "styled"),
    [
        ({}, False, False),
        ({}, True, True),
        ({"FORCE_COLOR": "1"}, False, True),
        ({"FORCE_COLOR": ""}, True, False),
        ({"TTY_COMPATIBLE": "0", "FORCE_COLOR": "1"}, True, False),
        ({"TTY_COMPATIBLE": "1"}, False, True),
        ({"TTY_COMPATIBLE": "2"}, False, False),
        ({"NO_COLOR": "1"}, False, False),
    ],
)
def test_rich_would_style_matches_rich(env: dict[str, str], tty: bool, styled: bool) -> None:
    from rich.console import Console

    class Stream(io.StringIO):
        def isatty(self) -> bool:
            return tty

    stream = Stream()
    assert rich_would_style(stream, env) is styled
    assert Console(file=stream, _environ=env).is_terminal is styled
