"""Kyverno's wildcard matching (go-wildcard v1): ``*`` any run of characters, including
``/``; ``?`` exactly one character; everything else literal and case-sensitive.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.DOTALL)


def wildcard_match(pattern: str, text: str) -> bool:
    """True when ``text`` matches the wildcard ``pattern`` as Kyverno matches it."""
    if pattern == "":
        return text == ""
    if "*" not in pattern and "?" not in pattern:
        return pattern == text
    return _regex(pattern).fullmatch(text) is not None
