"""`kspec policies --spec FILE`: print the ClusterPolicies a spec expects, for review or GitOps.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_kspec.atomic import write_text
from pytest_kspec.desired import coverage_lines, generate_policies, kyverno_versions, render_yaml
from pytest_kspec.errors import SpecError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``kspec policies``."""
    parser.add_argument("--spec", dest="spec", metavar="FILE", required=True,
                        help="ClusterSpecification to generate the policies from.")
    parser.add_argument("--kyverno-version", dest="kyverno_version", metavar="X", default=None,
                        help="Kyverno version the policies are for (1.12: spec-level "
                             "validationFailureAction only; 1.13 and later: rule-level "
                             "validate.failureAction only; default: both fields).")
    parser.add_argument("--output", "-o", dest="output", metavar="FILE", default=None,
                        help="Write the YAML to FILE (atomically) instead of standard output.")


def run(args: argparse.Namespace) -> int:
    """Generate and print (or write) the policies; 0 on success, 2 when the spec or output fails."""
    from pytest_kspec.spec import load_spec

    try:
        spec = load_spec(Path(args.spec))
    except SpecError as err:
        for line in err.problems or [str(err)]:
            print(line, file=sys.stderr)
        return 2
    version = None
    if args.kyverno_version is not None:
        version = kyverno_versions.parse_version(args.kyverno_version)
        if version is None:
            print(f"--kyverno-version: {args.kyverno_version!r} is not a version like 1.12 or "
                  "1.13.4", file=sys.stderr)
            return 2
    objs = generate_policies(spec, version)
    text = render_yaml(objs)
    if args.output is None:
        sys.stdout.write(text)
        _print_coverage(spec.body)
        return 0
    try:
        write_text(Path(args.output), text)
    except OSError as err:
        print(f"{args.output}: cannot write the policies: {err.strerror or err} "
              "(choose a writable --output path)", file=sys.stderr)
        return 2
    print(f"wrote {len(objs)} policies to {args.output}", file=sys.stderr)
    _print_coverage(spec.body)
    return 0


def _print_coverage(body: Mapping[str, Any]) -> None:
    """Which workload rules the policies back, and which are audit-only (on stderr, so the
    YAML on stdout stays pipeable into kubectl)."""
    for line in coverage_lines(body):
        print(line, file=sys.stderr)
