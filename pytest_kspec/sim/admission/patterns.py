"""Kyverno's ``validate.pattern`` matching for the forms kspec's policies and the policy
library use: plain keys (must be present), ``=(key)`` equality anchors (checked only when
present), ``X(key)`` negation anchors (must be absent), arrays whose one pattern element
every resource element must match, and scalar patterns with ``|`` (or), ``&`` (and), the
operators ``!``, ``>``, ``<``, ``>=``, ``<=``, wildcards, and quantity/duration comparison.

:func:`mismatch` returns None when the resource matches, else the JSON-pointer-like path
Kyverno names in its message (``/spec/containers/0/securityContext/privileged/``).

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from pytest_kspec.sim.admission.wildcard import wildcard_match

_ANCHOR = re.compile(r"^(?P<mod>[+<=X^])?\((?P<key>.+)\)$")
_OPERATORS = (">=", "<=", "!=", ">", "<", "!")
_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
                       r"(Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+|[numkMGTPE])?$")
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15,
            "E": 18}


def _quantity(text: str) -> Fraction | None:
    match = _QUANTITY.match(text.strip())
    if match is None:
        return None
    number, suffix = Fraction(match.group(1)), match.group(2) or ""
    if suffix in _BINARY:
        return number * Fraction(2) ** _BINARY[suffix]
    if suffix[:1] in ("e", "E") and len(suffix) > 1:
        return number * Fraction(10) ** int(suffix[1:])
    return number * Fraction(10) ** _DECIMAL[suffix]


def _as_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return value
    return None


def _number_text(value: Any) -> str | None:
    if value is None:
        return "0"
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return f"{value:f}"
    if isinstance(value, int | str):
        return str(value)
    return None


def _compare(value: Any, pattern: str, op: str) -> bool:
    number = _number_text(value)
    want = _quantity(pattern)
    have = _quantity(number) if number is not None else None
    if want is not None and have is not None:
        return {"": have == want, "!": have != want, "!=": have != want, ">": have > want,
                "<": have < want, ">=": have >= want, "<=": have <= want}[op]
    if op not in ("", "!", "!="):
        return False
    text = _as_text(value)
    if text is None:
        return False
    hit = wildcard_match(pattern, text)
    return not hit if op in ("!", "!=") else hit


def _one(value: Any, pattern: str) -> bool:
    pattern = pattern.strip()
    op = next((o for o in _OPERATORS if pattern.startswith(o)), "")
    return _compare(value, pattern[len(op):].strip(), op)


def scalar_matches(value: Any, pattern: Any) -> bool:
    """A resource value against a scalar pattern, as Kyverno's ``pattern.Validate``."""
    if isinstance(pattern, bool):
        return isinstance(value, bool) and value is pattern
    if isinstance(pattern, int | float):
        if isinstance(value, bool):
            return False
        if isinstance(value, str):
            try:
                return float(value) == float(pattern)
            except ValueError:
                return False
        return isinstance(value, int | float) and float(value) == float(pattern)
    if pattern is None:
        return value in (None, "", 0, False)
    if not isinstance(pattern, str):
        return False
    if isinstance(value, Mapping | list):
        return False
    if value == pattern:
        return True
    return any(all(_one(value, part) for part in alt.split("&")) for alt in pattern.split("|"))


def mismatch(resource: Any, pattern: Any, path: str = "/") -> str | None:
    """None when ``resource`` matches ``pattern``, else the path where it does not."""
    if isinstance(pattern, Mapping):
        if not isinstance(resource, Mapping):
            return path
        for key, sub in pattern.items():
            anchor = _ANCHOR.match(str(key).strip())
            if anchor is not None and anchor["mod"] == "=":
                name = anchor["key"]
                if name in resource and (found := mismatch(resource[name], sub,
                                                           f"{path}{name}/")) is not None:
                    return found
            elif anchor is not None and anchor["mod"] == "X":
                if anchor["key"] in resource:
                    return f"{path}{anchor['key']}/"
            else:
                name = anchor["key"] if anchor is not None else str(key)
                if name not in resource:
                    if sub is None or (isinstance(sub, str) and scalar_matches(None, sub)):
                        continue
                    return f"{path}{name}/"
                found = mismatch(resource[name], sub, f"{path}{name}/")
                if found is not None:
                    return found
        return None
    if isinstance(pattern, list):
        if not isinstance(resource, list) or not pattern:
            return path
        element = pattern[0]
        for i, item in enumerate(resource):
            found = mismatch(item, element, f"{path}{i}/")
            if found is not None:
                return found
        return None
    if isinstance(resource, list):
        return next((path for item in resource if not scalar_matches(item, pattern)), None)
    return None if scalar_matches(resource, pattern) else path
