"""Kubernetes quantities (``512Mi``, ``0.5Gi``, ``250m``, ``1e3``) as exact numbers.

A spec value and a live value that are both quantities compare as quantities, as Kyverno's
pattern matching does (``compareQuantity``) and as the API server means them: ``0.5Gi`` equals
``512Mi``, ``1`` equals ``1000m``. Anything else compares as text.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import re
from fractions import Fraction

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL: dict[str, Fraction | int] = {
    "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": 1, "k": 10**3,
    "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_QUANTITY = re.compile(
    r"^(?P<num>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(?P<bin>Ki|Mi|Gi|Ti|Pi|Ei)|[eE](?P<exp>[+-]?[0-9]+)|(?P<dec>[numkMGTPE]?))$")


def parse_quantity(value: object) -> Fraction | None:
    """``value`` as an exact number when it is a Kubernetes quantity, else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(value)
    if not isinstance(value, str):
        return None
    match = _QUANTITY.match(value.strip())
    if match is None:
        return None
    number = Fraction(match["num"])
    if match["bin"]:
        return number * _BINARY[match["bin"]]
    if match["exp"] is not None:
        return number * Fraction(10) ** int(match["exp"])
    return number * _DECIMAL[match["dec"] or ""]


def same_quantity(actual: object, wanted: object) -> bool | None:
    """True/False when both values are quantities (equal or not), None when either is not."""
    a, w = parse_quantity(actual), parse_quantity(wanted)
    if a is None or w is None:
        return None
    return a == w
