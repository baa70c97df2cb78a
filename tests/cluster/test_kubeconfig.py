"""Our kubeconfig reader against kubectl's: the same kubeconfig (merged from several files,
relative paths, tokens, token files, client certificates, TLS settings, impersonation) must
give the same context, server and identity, and the same kubeconfigs must be refused."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_kspec.cluster import Cluster, RetryPolicy, list_contexts, load_context
from pytest_kspec.cluster.transport import proxy_for
from pytest_kspec.errors import ApiError, ClusterError
from pytest_kspec.sim import Simulator
from tests.cluster.tls_server import CLIENT_TLS, SERVER_TLS, connect_proxy, tls_server

pytestmark = pytest.mark.kubectl
KUBECTL = shutil.which("kubectl")
USERS = {"tok-alice": ("alice", ("devs",)), "tok-bob": ("bob", ()), "tok-carol": ("carol", ())}
ONCE = RetryPolicy(attempts=1)


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(users=USERS) as s:
        yield s


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No ~/.kube/config, no proxy, no KUBECONFIG but what a test sets."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in list(os.environ):
        if name.lower().endswith("_proxy") or name == "KUBECONFIG":
            monkeypatch.delenv(name)
    return tmp_path


def _kubectl(*args: str, kubeconfig: str | None = None) -> subprocess.CompletedProcess[str]:
    if KUBECTL is None:
        pytest.skip("kubectl not on PATH")
    env = dict(os.environ)
    if kubeconfig is not None:
        env["KUBECONFIG"] = kubeconfig
    return subprocess.run([KUBECTL, *args, "--request-timeout=10s"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def _write(path: Path, doc: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _config(clusters: dict[str, Any], users: dict[str, Any],
            contexts: dict[str, Any], current: str = "") -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": k, "cluster": v} for k, v in clusters.items()],
        "users": [{"name": k, "user": v} for k, v in users.items()],
        "contexts": [{"name": k, "context": v} for k, v in contexts.items()]}
    if current:
        doc["current-context"] = current
    return doc


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _sim_user(sim: Simulator, since: int) -> set[str]:
    return {r.user for r in sim.requests[since:] if r.path.startswith("/api/v1/namespaces")}


def _our_user(sim: Simulator, kubeconfig: str | None, context: str | None) -> set[str]:
    since = len(sim.requests)
    cluster = Cluster.connect(kubeconfig, context, retry=ONCE)
    try:
        cluster.list("v1", "Namespace")
    finally:
        cluster.close()
    return _sim_user(sim, since)


def _kubectl_user(sim: Simulator, kubeconfig: str, context: str | None) -> set[str]:
    since = len(sim.requests)
    args = ["get", "--raw", "/api/v1/namespaces"] + (["--context", context] if context else [])
    proc = _kubectl(*args, kubeconfig=kubeconfig)
    assert proc.returncode == 0, proc.stderr
    return _sim_user(sim, since)


@pytest.fixture
def merged(sim: Simulator, home: Path) -> str:
    """Two kubeconfigs in two folders, overlapping names, relative paths; KUBECONFIG lists a
    missing file, the first, the second and the first again."""
    a, b = home / "a", home / "b"
    a.mkdir()
    b.mkdir()
    (a / "ca.crt").write_text(Path(sim.ca_path).read_text())
    (b / "bob.token").write_text("tok-bob\n")
    _write(a / "config", _config(
        clusters={"sim": {"server": sim.url, "certificate-authority": "ca.crt"}},
        users={"alice": {"token": "tok-alice"}},
        contexts={"shop": {"cluster": "sim", "user": "alice", "namespace": "shop"}},
        current="shop"))
    _write(b / "config", _config(
        clusters={"sim": {"server": "https://192.0.2.1:6443"},  # shadowed by a/config
                  "sim-data": {"server": sim.url,
                               "certificate-authority-data": _b64(
                                   Path(sim.ca_path).read_text())}},
        users={"alice": {"token": "tok-carol"},  # shadowed by a/config
               "bob": {"tokenFile": "bob.token"}, "carol": {"token": "tok-carol"}},
        contexts={"shop": {"cluster": "sim-data", "user": "bob"},  # shadowed
                  "ops": {"cluster": "sim-data", "user": "bob", "namespace": "ops"},
                  "audit": {"cluster": "sim", "user": "carol"}},
        current="ops"))  # the first file's current-context wins
    return os.pathsep.join(str(p) for p in (home / "absent", a / "config", b / "config",
                                             a / "config"))


def test_merged_kubeconfig_resolves_each_context_as_kubectl(
        sim: Simulator, merged: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", merged)
    names = _kubectl("config", "get-contexts", "-o", "name", kubeconfig=merged)
    assert sorted(c.name for c in list_contexts()) == sorted(names.stdout.split())
    current = _kubectl("config", "current-context", kubeconfig=merged).stdout.strip()
    assert current == "shop"
    assert [c.name for c in list_contexts() if c.current] == [current]
    for context in (None, "shop", "ops", "audit"):
        args = ["config", "view", "--minify", "--flatten", "-o", "json"]
        view = json.loads(_kubectl(*args, *(["--context", context] if context else []),
                                   kubeconfig=merged).stdout)
        theirs = {"context": view["current-context"],
                  "server": view["clusters"][0]["cluster"]["server"],
                  "ca": base64.b64decode(
                      view["clusters"][0]["cluster"]["certificate-authority-data"]).decode(),
                  "namespace": view["contexts"][0]["context"].get("namespace", ""),
                  "user": view["users"][0]["name"]}
        ours = load_context(None, context)
        ca = ours.ca_data or Path(str(ours.ca_file)).read_text()
        assert {"context": ours.name, "server": ours.server, "ca": ca,
                "namespace": ours.namespace, "user": ours.user} == theirs
        assert _our_user(sim, None, context) == _kubectl_user(sim, merged, context)
    assert _our_user(sim, None, None) == {"alice"}
    assert _our_user(sim, None, "ops") == {"bob"}  # the token file, read relative to b/


def test_token_file_is_reread_when_it_changes(sim: Simulator, home: Path) -> None:
    token = home / "token"
    token.write_text("tok-bob")
    path = _write(home / "kc", _config(
        {"sim": {"server": sim.url, "certificate-authority": sim.ca_path}},
        {"u": {"tokenFile": str(token), "token": "tok-carol"}},
        {"c": {"cluster": "sim", "user": "u"}}, "c"))
    # kubectl reads the token file when both are set; so do we
    assert _kubectl_user(sim, str(path), None) == {"bob"}
    cluster = Cluster.connect(str(path), retry=ONCE)
    try:
        since = len(sim.requests)
        cluster.list("v1", "Namespace")
        token.write_text("tok-alice")
        cluster.list("v1", "Namespace")
        assert [r.user for r in sim.requests[since:]
                if r.path == "/api/v1/namespaces"] == ["bob", "alice"]
    finally:
        cluster.close()


@pytest.mark.parametrize("form", ["files", "data"])
def test_client_certificate_identity_matches_kubectl(home: Path, form: str) -> None:
    (home / "certs").mkdir()
    for name, key in (("ca.crt", "ca"), ("jane.crt", "certificate"), ("jane.key", "key")):
        (home / "certs" / name).write_text(CLIENT_TLS[key])
    user = ({"client-certificate": "certs/jane.crt", "client-key": "certs/jane.key"}
            if form == "files" else
            {"client-certificate-data": _b64(CLIENT_TLS["certificate"]),
             "client-key-data": _b64(CLIENT_TLS["key"])})
    with tls_server() as server:
        url = f"https://127.0.0.1:{server.server_address[1]}"
        ca = (home / "server-ca.crt")

        ca.write_text(SERVER_TLS["certificate"])
        path = _write(home / "kc", _config({"c": {"server": url, "certificate-authority":
                                                  str(ca)}},
                                           {"jane": user}, {"x": {"cluster": "c", "user": "jane"}},
                                           "x"))
        proc = _kubectl("get", "--raw", "/version", kubeconfig=str(path))
        assert proc.returncode == 0, proc.stderr
        cluster = Cluster.connect(str(path), retry=ONCE)
        try:
            assert cluster.version()["gitVersion"] == "v1.29.4"
        finally:
            cluster.close()
        theirs, ours = server.calls[-2], server.calls[-1]
        assert theirs.subject == ours.subject == {"organizationName": "devs",
                                                  "commonName": "jane"}
        assert theirs.header("Authorization") == ours.header("Authorization") == []


def test_impersonation_headers_match_kubectl(home: Path) -> None:
    (home / "jane.crt").write_text(CLIENT_TLS["certificate"])
    (home / "jane.key").write_text(CLIENT_TLS["key"])

    user = {"client-certificate": "jane.crt", "client-key": "jane.key", "as": "auditor",
            "as-groups": ["readers", "auditors"], "as-user-extra": {"reason": ["drift check"]}}
    with tls_server() as server:
        url = f"https://127.0.0.1:{server.server_address[1]}"
        path = _write(home / "kc", _config(
            {"c": {"server": url, "certificate-authority-data": _b64(SERVER_TLS["certificate"])}},
            {"jane": user}, {"x": {"cluster": "c", "user": "jane"}}, "x"))
        assert _kubectl("get", "--raw", "/version", kubeconfig=str(path)).returncode == 0
        Cluster.connect(str(path), retry=ONCE).version()
        theirs, ours = server.calls[-2], server.calls[-1]
        for name in ("Impersonate-User", "Impersonate-Group", "Impersonate-Extra-Reason"):
            assert ours.header(name) == theirs.header(name) != [], name


@pytest.mark.parametrize(("cluster", "works"), [
    ({"insecure-skip-tls-verify": True}, True),
    ({"tls-server-name": "localhost", "ca": True}, True),
    ({"tls-server-name": "elsewhere.example", "ca": True}, False),
    ({}, False),  # a self-signed server, no CA: not trusted
], ids=["insecure", "tls-server-name", "wrong-tls-server-name", "untrusted"])
def test_tls_settings_match_kubectl(sim: Simulator, home: Path, cluster: dict[str, Any],
                                    works: bool) -> None:
    entry = {"server": sim.url, **{k: v for k, v in cluster.items() if k != "ca"}}
    if cluster.get("ca"):
        entry["certificate-authority"] = sim.ca_path
    path = str(_write(home / "kc", _config({"c": entry}, {"u": {"token": "tok-bob"}},
                                           {"x": {"cluster": "c", "user": "u"}}, "x")))
    proc = _kubectl("get", "--raw", "/api/v1/namespaces", kubeconfig=path)
    assert (proc.returncode == 0) is works, proc.stderr
    if works:
        assert _our_user(sim, path, None) == {"bob"}
    else:
        with pytest.raises(ApiError) as e:
            _our_user(sim, path, None)
        assert "TLS verification failed" in str(e.value) and "\n" not in str(e.value)


def _ca(sim: Simulator) -> str:
    return _b64(Path(sim.ca_path).read_text())


# case: (change to the cluster, to the user, the context entry, current-context, the
# --context asked for, what our one-line error says); each is refused by kubectl too
BROKEN: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, str] | None, str,
                        str | None, str]] = {
    "unknown-context": ({}, {}, None, "x", "prod", 'context "prod" not found (it has: x)'),
    "no-current-context": ({}, {}, None, "", None, "no current-context set"),
    "missing-cluster": ({}, {}, {"cluster": "nope", "user": "u"}, "x", None,
                        'names cluster "nope", which is not defined'),
    "missing-user": ({}, {}, {"cluster": "c", "user": "nope"}, "x", None,
                     'names user "nope", which is not defined'),
    "no-server": ({"server": ""}, {}, None, "x", None, 'cluster "c" has no server'),
    "insecure-with-ca": ({"insecure-skip-tls-verify": True}, {}, None, "x", None,
                         "insecure-skip-tls-verify and a certificate authority are both set"),
    "cert-without-key": ({}, {"client-certificate-data": _b64(CLIENT_TLS["certificate"])},
                         None, "x", None, "client-key (or client-key-data) missing"),
    "missing-ca-file": ({"certificate-authority": "absent.crt"}, {}, None, "x", None,
                        "certificate-authority"),
    "bad-ca-data": ({"certificate-authority-data": "not base64!"}, {}, None, "x", None,
                    "certificate-authority-data is not base64-encoded PEM"),
}


@pytest.mark.parametrize("case", [*BROKEN, "duplicate-name", "not-yaml"])
def test_broken_kubeconfig_is_refused_by_both(sim: Simulator, home: Path, case: str) -> None:
    cluster, user, context, current, asked, message = BROKEN.get(
        case, ({}, {}, None, "x", None, ""))
    doc = _config({"c": {"server": sim.url, "certificate-authority-data": _ca(sim), **cluster}},
                  {"u": {"token": "tok-bob", **user}},
                  {"x": context or {"cluster": "c", "user": "u"}}, current)
    path = home / "kc"
    _write(path, doc)
    if case == "duplicate-name":
        doc["contexts"].append(doc["contexts"][0])
        _write(path, doc)
        message = 'duplicate name "x" in contexts'
    elif case == "not-yaml":
        path.write_text("clusters: [\n")
        message = "not a valid kubeconfig"
    args = ["get", "--raw", "/api/v1/namespaces"] + (["--context", asked] if asked else [])
    assert _kubectl(*args, kubeconfig=str(path)).returncode != 0
    with pytest.raises(ClusterError) as e:
        Cluster.connect(str(path), asked, retry=ONCE)
    text = str(e.value)
    assert message in text and text.startswith(str(path)) and "\n" not in text, text


def test_exec_plugin_user_goes_through_the_official_loader(sim: Simulator, home: Path) -> None:
    plugin = home / "credential.py"
    plugin.write_text(textwrap.dedent("""
        import json
        print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1beta1",
                          "kind": "ExecCredential", "status": {"token": "tok-carol"}}))
    """))
    path = str(_write(home / "kc", _config(
        {"c": {"server": sim.url, "certificate-authority": sim.ca_path}},
        {"u": {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": sys.executable, "args": [str(plugin)],
                        "interactiveMode": "Never"}}},
        {"x": {"cluster": "c", "user": "u", "namespace": "ops"}}, "x")))
    assert load_context(path).delegated == "exec"
    assert _our_user(sim, path, None) == _kubectl_user(sim, path, None) == {"carol"}


def test_kubeconfig_variable_naming_only_missing_files_is_one_line(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(home / "absent"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KSPEC_SERVICE_ACCOUNT_DIR", str(home / "no-account"))
    with pytest.raises(ClusterError) as e:
        Cluster.connect()
    assert f"$KUBECONFIG={home / 'absent'} names no existing file" in str(e.value)
    assert list_contexts() == []


PLAIN_RUN = """
import sys
from pytest_kspec.cluster import Cluster, list_contexts
from pytest_kspec.cluster.watch import KindWatcher
cluster = Cluster.connect(sys.argv[1])
assert [c.name for c in list_contexts(sys.argv[1])] == ["kspec-sim"]
assert cluster.list("v1", "Namespace")
items, version = cluster.list_versioned("v1", "Namespace")
events = cluster.watch("v1", "Namespace", version, timeout_seconds=1)
list(events)
cluster.close()
loaded = sorted(m for m in sys.modules if m == "kubernetes" or m.startswith("kubernetes."))
print(loaded)
"""


def test_a_plain_kubeconfig_imports_no_official_client(sim: Simulator) -> None:
    proc = subprocess.run([sys.executable, "-c", PLAIN_RUN, sim.kubeconfig_path],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_a_resolved_context_never_shows_its_secrets(home: Path) -> None:
    path = _write(home / "kc", _config(
        {"c": {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": True}},
        {"u": {"token": "s3cret-token", "client-certificate-data": _b64(CLIENT_TLS["certificate"]),
               "client-key-data": _b64(CLIENT_TLS["key"]), "password": "pw-s3cret",
               "username": "jane"}},
        {"x": {"cluster": "c", "user": "u"}}, "x"))
    shown = repr(load_context(str(path)))
    assert "s3cret" not in shown and "PRIVATE KEY" not in shown
    assert "jane" in shown


def test_proxy_url_tunnels_like_kubectl(sim: Simulator, home: Path) -> None:
    with connect_proxy() as proxy:
        path = str(_write(home / "kc", _config(
            {"c": {"server": sim.url, "certificate-authority": sim.ca_path,
                   "proxy-url": f"http://kspec:pw@127.0.0.1:{proxy.server_address[1]}"}},
            {"u": {"token": "tok-bob"}}, {"x": {"cluster": "c", "user": "u"}}, "x")))
        assert _kubectl_user(sim, path, None) == {"bob"}
        through_kubectl = list(proxy.targets)
        assert _our_user(sim, path, None) == {"bob"}
        ours = proxy.targets[len(through_kubectl):]
    target = f"127.0.0.1:{sim.port}"
    assert through_kubectl and set(through_kubectl) == set(ours) == {target}
    basic = "Basic " + base64.b64encode(b"kspec:pw").decode()
    assert set(proxy.auth) == {basic}


@pytest.mark.parametrize(("server", "env", "expected"), [
    ("https://api.example.com:6443", {"HTTPS_PROXY": "http://p:3128"}, "http://p:3128"),
    ("https://api.example.com:6443", {"https_proxy": "http://p:3128",
                                      "NO_PROXY": ".example.com"}, None),
    ("https://api.example.com:6443", {"HTTPS_PROXY": "http://p:3128",
                                      "NO_PROXY": "example.com"}, None),
    ("https://api.example.com:6443", {"HTTPS_PROXY": "http://p:3128",
                                      "NO_PROXY": "api.example.com:443"}, "http://p:3128"),
    ("https://10.1.2.3:6443", {"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "10.0.0.0/8"}, None),
    ("https://10.1.2.3:6443", {"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "*"}, None),
    ("https://127.0.0.1:6443", {"HTTPS_PROXY": "http://p:3128"}, None),  # loopback: never
    ("https://localhost:6443", {"ALL_PROXY": "http://p:3128"}, None),
    ("http://api.example.com", {"HTTPS_PROXY": "http://p:3128"}, None),  # scheme's own
    ("https://api.example.com", {"ALL_PROXY": "socks5://p:1080"}, "socks5://p:1080"),
    ("https://api.example.com", {"ALL_PROXY": "http://p:3128",
                                 "NO_PROXY": "api.example.com:443"}, None),  # default port
], ids=lambda v: str(v))
def test_environment_proxies_as_client_go_reads_them(
        server: str, env: dict[str, str], expected: str | None) -> None:
    assert proxy_for(server, "", env) == expected
