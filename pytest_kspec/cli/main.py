"""The ``kspec`` command: drift detection, generated policies and the simulator, without pytest.

Exit codes: 0 no drift, 1 drift found, 2 could not complete (bad input, cluster unreachable,
checks that could not be evaluated).

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from pytest_kspec import __version__
from pytest_kspec.errors import KspecError

EXIT_OK, EXIT_DRIFT, EXIT_INCOMPLETE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    from pytest_kspec.cli import drift as drift_cli
    from pytest_kspec.cli import history as history_cli
    from pytest_kspec.cli import plan as plan_cli
    from pytest_kspec.cli import policies as desired_cli
    from pytest_kspec.cli import sim as serve

    parser = argparse.ArgumentParser(
        prog="kspec", description="Prove that a Kubernetes cluster matches its kspec spec.")
    parser.add_argument("--version", action="version", version=f"kspec {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log more (-v info, -vv debug)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    drift = commands.add_parser("drift", help="detect drift between the cluster and the spec")
    drift_commands = drift.add_subparsers(dest="drift_command", metavar="SUBCOMMAND",
                                          required=True)
    detect = drift_commands.add_parser(
        "detect", help="check the cluster against the spec and write the reports")
    drift_cli.add_detect_arguments(detect)
    detect.set_defaults(handler=drift_cli.run_detect)
    remediate = drift_commands.add_parser(
        "remediate", help="detect drift, then fix what can be fixed (policies; resources "
                          "when configured) and verify each fix; --plan FILE writes the fixes "
                          "for approval, --apply FILE --approved-by NAME performs them")
    drift_cli.add_remediate_arguments(remediate)
    remediate.set_defaults(handler=drift_cli.run_detect)
    plan = drift_commands.add_parser(
        "plan", help="remediation plans: review one before it is approved and applied")
    plan_commands = plan.add_subparsers(dest="plan_command", metavar="SUBCOMMAND", required=True)
    show = plan_commands.add_parser(
        "show", help="print a plan for a reviewer: spec, cluster, age, digest, every write")
    plan_cli.add_show_arguments(show)
    show.set_defaults(handler=plan_cli.run_show)
    history = drift_commands.add_parser(
        "history", help="drift history: what drifted when, for how long, what was fixed; "
                        "--verify checks the audit trail")
    history_cli.add_arguments(history)
    history.set_defaults(handler=history_cli.run)

    policies = commands.add_parser(
        "policies", help="print the Kyverno ClusterPolicies the spec expects (multi-doc YAML)")
    desired_cli.add_arguments(policies)
    policies.set_defaults(handler=desired_cli.run)

    sim = commands.add_parser("sim", help="the embedded Kubernetes API simulator")
    sim_commands = sim.add_subparsers(dest="sim_command", metavar="SUBCOMMAND", required=True)
    sim_serve = sim_commands.add_parser(
        "serve", help="serve a simulated cluster preloaded from YAML until interrupted")
    serve.add_arguments(sim_serve)
    sim_serve.set_defaults(handler=serve.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        code: int = args.handler(args)
        sys.stdout.flush()
    except KspecError as e:
        print(f"kspec: error: {e}", file=sys.stderr)
        return EXIT_INCOMPLETE
    except KeyboardInterrupt:
        print("kspec: interrupted", file=sys.stderr)
        return EXIT_INCOMPLETE
    except BrokenPipeError:  # `kspec drift history | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    return code

