"""Kyverno's JMESPath dialect: ``{{ }}`` substitution and the custom functions kspec's
policies call (``image_normalize``, ``regex_match``, ``regex_replace_all``, ``pattern_match``,
``split``, ``to_lower``), written from Kyverno's documented behaviour and source.

Differences from Python's ``re`` that matter here are bridged: Go's replacement syntax
(``$1``, ``${1}``) is translated, and Go's RE2 flags (``(?i)``) read the same.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import jmespath
from jmespath import functions

from pytest_kspec.sim.admission.wildcard import wildcard_match

# Kyverno's variable regex: {{ ... }} with at most one level of nested braces, not after "\".
VARIABLE = re.compile(r"(^|[^\\])(\{\{(?:\{[^{}]*\}|[^{}])*\}\})")

DEFAULT_REGISTRY = "docker.io"


class KyvernoJmesError(ValueError):
    """A JMESPath expression failed (bad image, bad regex, unknown function)."""


# Docker's reference grammar, enough to tell a valid image from an invalid one.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*" \
          r"[a-zA-Z0-9])?))*(?::[0-9]+)?|\[[0-9a-fA-F:.]+\](?::[0-9]+)?"
_REFERENCE = re.compile(
    rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z]"
    r"[A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$")


def image_normalize(image: str, default_registry: str = DEFAULT_REGISTRY,
                    mutate: bool = True) -> str:
    """Kyverno's ``image_normalize``: ``<registry>/<path>`` plus ``@digest`` or ``:tag``
    (``latest`` by default); the default registry is prepended to short names, ``library/``
    is not added and Docker Hub aliases are not folded."""
    slash = image.find("/")
    full = image
    if slash == -1 or (not any(c in image[:slash] for c in ".:")
                       and image[:slash] != "localhost"
                       and image[:slash].lower() == image[:slash]):
        full = f"{default_registry}/{image}"
    match = _REFERENCE.match(full)
    if match is None or match["domain"] is None:
        raise KyvernoJmesError(f"bad image: {full}, defaultRegistry: {default_registry}")
    registry = match["domain"] if (full == image or mutate) else ""
    path, tag, digest = match["path"], match["tag"] or "", match["digest"] or ""
    name = f"{registry}/{path}" if registry else path
    if digest:
        return f"{name}@{digest}"
    return f"{name}:{tag or 'latest'}"


def _go_replacement(repl: str) -> str:
    """Go's ``$1`` / ``${1}`` / ``$name`` expansion as a Python ``re.sub`` template."""
    out: list[str] = []
    i = 0
    while i < len(repl):
        char = repl[i]
        if char == "$" and i + 1 < len(repl):
            if repl[i + 1] == "$":
                out.append("$")
                i += 2
                continue
            braced = re.match(r"\{(\w+)\}", repl[i + 1:])
            bare = re.match(r"\w+", repl[i + 1:])
            found = braced or bare
            if found:
                name = found.group(1) if braced else found.group(0)
                out.append(f"\\g<{name}>")
                i += 1 + len(found.group(0))
                continue
        out.append("\\\\" if char == "\\" else char)
        i += 1
    return "".join(out)


def _compile(regex: str) -> re.Pattern[str]:
    try:
        return re.compile(regex)
    except re.error as err:
        raise KyvernoJmesError(f"invalid regex {regex!r}: {err}") from None


def _text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise KyvernoJmesError(f"expected a string or number, got {value!r}")
    return value if isinstance(value, str) else repr(value)


class KyvernoFunctions(functions.Functions):
    """The custom functions kspec's generated policies use."""

    default_registry = DEFAULT_REGISTRY

    @functions.signature({"types": ["string"]})
    def _func_image_normalize(self, image: str) -> str:
        return image_normalize(image, self.default_registry)

    @functions.signature({"types": ["string"]}, {"types": ["string", "number"]})
    def _func_regex_match(self, regex: str, value: Any) -> bool:
        return _compile(regex).search(_text(value)) is not None

    @functions.signature({"types": ["string"]}, {"types": ["string", "number"]},
                         {"types": ["string", "number"]})
    def _func_regex_replace_all(self, regex: str, value: Any, repl: Any) -> str:
        compiled = _compile(regex)
        try:
            return compiled.sub(_go_replacement(_text(repl)), _text(value))
        except (re.error, IndexError) as err:
            raise KyvernoJmesError(f"regex_replace_all: {err}") from None

    @functions.signature({"types": ["string"]}, {"types": ["string", "number"]})
    def _func_pattern_match(self, pattern: str, value: Any) -> bool:
        return wildcard_match(pattern, _text(value))

    @functions.signature({"types": ["string"]}, {"types": ["string"]})
    def _func_split(self, value: str, sep: str) -> list[str]:
        return value.split(sep)

    @functions.signature({"types": ["string"]})
    def _func_to_lower(self, value: str) -> str:
        return value.lower()

    @functions.signature({"types": ["string"]})
    def _func_to_upper(self, value: str) -> str:
        return value.upper()


_OPTIONS = jmespath.Options(custom_functions=KyvernoFunctions())


def search(expression: str, data: Mapping[str, Any]) -> Any:
    """Evaluate a Kyverno JMESPath ``expression`` over ``data``."""
    try:
        return jmespath.search(expression.strip(), data, options=_OPTIONS)
    except KyvernoJmesError:
        raise
    except Exception as err:  # jmespath's parse and type errors
        raise KyvernoJmesError(f"JMESPath {expression.strip()!r}: {err}") from None


def substitute(value: Any, context: Mapping[str, Any],
               lookup: Callable[[str, Mapping[str, Any]], Any] = search) -> Any:
    """``value`` with every ``{{ expr }}`` replaced: a string that is one variable takes the
    variable's value (any type), otherwise each variable is printed into the string."""
    if isinstance(value, Mapping):
        return {k: substitute(v, context, lookup) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, context, lookup) for v in value]
    if not isinstance(value, str) or "{{" not in value:
        return value
    whole = VARIABLE.fullmatch(value)
    if whole is not None and whole.group(1) == "":
        return lookup(whole.group(2)[2:-2], context)

    def put(match: re.Match[str]) -> str:
        found = lookup(match.group(2)[2:-2], context)
        if isinstance(found, bool):
            text = "true" if found else "false"
        elif found is None:
            text = "null"
        else:
            text = str(found)
        return match.group(1) + text

    return VARIABLE.sub(put, value)
