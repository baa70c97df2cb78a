"""`kspec policies --spec FILE`: print the ClusterPolicies a spec expects, for review or GitOps."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from pytest_kspec.desired import generate_policies, render_yaml
from pytest_kspec.errors import SpecError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``kspec policies``."""
    parser.add_argument("--spec", dest="spec", metavar="FILE", required=True,
                        help="ClusterSpecification to generate the policies from.")
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
    objs = generate_policies(spec)
    text = render_yaml(objs)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        write_atomically(Path(args.output), text)
    except OSError as err:
        print(f"{args.output}: cannot write the policies: {err.strerror or err} "
              "(choose a writable --output path)", file=sys.stderr)
        return 2
    print(f"wrote {len(objs)} policies to {args.output}", file=sys.stderr)
    return 0


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so readers see the old file or the whole new one, never half."""
    directory = path.parent if str(path.parent) else Path(".")
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
