"""The literal prefilter never changes a search outcome; it only skips searches that cannot match."""

from __future__ import annotations

import random
import re

import pytest

from bastion.payloads import load_payloads
from bastion.payloads.prefilter import may_match, required_literals, search

_SAMPLES = [
    'Traceback (most recent call last)', 'File "/a/b.py", line 3, in f', "at java.lang.Foo(Foo.java:12)",
    "at Foo.Bar() in C:\\x.cs:line 3", "<b>Fatal error</b>: Uncaught x in <b>/a.php</b> on line <b>3</b>",
    "at Object.<anonymous> (/a/b.js:1:2)", "app/x.rb:12:in `foo", "ORA-00933: x", "SQLSTATE[42000]",
    "psycopg2.errors.SyntaxError", "You have an error in your SQL syntax", "sqlalchemy.exc.OperationalError",
]


def _texts(n: int) -> list[str]:
    rnd = random.Random(7)
    out = []
    for _ in range(n):
        parts = [rnd.choice(_SAMPLES)[rnd.randint(0, 10):rnd.randint(10, 60)] for _ in range(rnd.randint(0, 4))]
        out.append("".join(rnd.choice(["x", " ", "\n", p]) for p in parts) + rnd.choice(_SAMPLES + [""]))
    return out


def test_stack_signatures_match_exactly_as_re_search() -> None:
    texts = _texts(600)
    for sig in load_payloads().get("config_stack_signatures"):
        for text in texts:
            expected = re.search(sig["regex"], text)
            got = search(sig["regex"], text)
            assert (got is None) == (expected is None), (sig["name"], text)
            assert got is None or expected is None or got.group(0) == expected.group(0)


@pytest.mark.parametrize(("pattern", "requirements"), [
    (r"\bat (?:java|org)\.[\w$.]+\(\w+\.java:\d+\)", (("at ",), ("java", "org"), (".java:",))),
    (r"ab|cd", (("ab", "cd"),)),
    (r"a{0,3}bcd", (("bcd",),)),
    (r"x(?:foo|bar)+y", (("foo", "bar"),)),
])
def test_required_literals(pattern: str, requirements: tuple[tuple[str, ...], ...]) -> None:
    assert required_literals(pattern) == requirements


@pytest.mark.parametrize("pattern", [r"(?i)abc", r"(?=abc)x", r"(?:abc)?", r"[ab]c", r"(?:ab|c)d", r"x*"])
def test_no_prefilter_when_nothing_is_safely_required(pattern: str) -> None:
    assert required_literals(pattern) == ()
    assert may_match(pattern, "")


def test_flags_are_honoured() -> None:
    assert required_literals("abc", re.IGNORECASE) == ()
    assert search("ABC", "xabcx", re.IGNORECASE) is not None
    assert required_literals("[ab]cd(?i:efg)") == (("cd",),)
    assert search("[ab]cd(?i:efg)", "bcdEFG") is not None
