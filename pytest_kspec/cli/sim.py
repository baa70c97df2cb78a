"""``kspec sim serve``: run the simulator in the foreground until SIGINT/SIGTERM.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import signal
import sys
import threading
from types import FrameType

from pytest_kspec.errors import KspecError
from pytest_kspec.sim import Simulator, load_objects


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state", action="append", default=[], metavar="PATH",
                        help="YAML file or folder of objects to preload (repeatable)")
    parser.add_argument("--port", type=int, default=0, metavar="N",
                        help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--kubeconfig-out", dest="kubeconfig_out", default=None, metavar="F",
                        help="also write the admin kubeconfig to this file")
    parser.add_argument("--version", dest="k8s_version", default="1.29.4", metavar="V",
                        help="Kubernetes version to report (default 1.29.4)")
    parser.add_argument("--kyverno", action=argparse.BooleanOptionalAction, default=True,
                        help="preload Kyverno's CRDs (default on)")
    parser.add_argument("--admission", action=argparse.BooleanOptionalAction, default=True,
                        help="enforce Enforce-mode Kyverno ClusterPolicies on API writes of "
                             "Pods and controllers (default on)")
    parser.add_argument("--rbac", action="store_true",
                        help="authorize non-admin tokens from the stored RBAC objects")
    parser.add_argument("--nodes", type=_count, default=1, metavar="N",
                        help="Ready nodes to add when the state has fewer (default 1); "
                             "a fake kubelet on each runs the pods scheduled there")
    parser.add_argument("--kubelet-delay", dest="kubelet_delay", type=_seconds, default=1.0,
                        metavar="SECONDS",
                        help="seconds between a pod's phases, so `kubectl get pods -w` shows "
                             "them (default 1; 0 = at once)")


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a number of nodes (0 or more), got {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"expected seconds between 0 and 3600, got {text!r}")
    return value


def run(args: argparse.Namespace, *, ready: threading.Event | None = None,
        stop: threading.Event | None = None) -> int:
    """Serve until SIGINT/SIGTERM (or ``stop`` is set); 0 on a clean stop, 2 on bad input."""
    try:
        # every state file at once: namespaces and CRDs first, whichever file holds them
        sim = Simulator(load_objects(args.state), version=args.k8s_version, port=args.port,
                        kyverno=args.kyverno, rbac=args.rbac, admission=args.admission,
                        kubelet_delay=args.kubelet_delay)
        sim.ensure_nodes(args.nodes)
        if threading.current_thread() is threading.main_thread():
            # serving is this process's job and what was loaded lives as long as it: keep
            # it out of the cyclic collector's full passes (a fifth of the first LIST of
            # 50,000 loaded pods). Not when embedded in another program's thread.
            gc.freeze()
        sim.start()
    except KspecError as e:
        print(f"kspec sim serve: {e}", file=sys.stderr)
        return 2
    stop = stop or threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    try:
        kubeconfig = sim.kubeconfig_path
        if args.kubeconfig_out:
            shutil.copyfile(sim.kubeconfig_path, args.kubeconfig_out)
            kubeconfig = args.kubeconfig_out
        print(f"Kubernetes API simulator serving at {sim.url}", flush=True)
        print(f"kubeconfig: {kubeconfig}", flush=True)
        if ready is not None:
            ready.set()
        while not stop.wait(0.2):
            pass
    finally:
        sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kspec sim serve",
                                     description="Serve a simulated Kubernetes API.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
