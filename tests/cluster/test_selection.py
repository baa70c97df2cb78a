"""Which clusters a run checks: ``--kspec-context a,b|all`` and DriftConfig ``clusters:``,
checked offline against the kubeconfig, with one-line errors naming the file and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pytest_kspec.cluster import ClusterRef, select_clusters
from pytest_kspec.errors import ClusterError
from pytest_kspec.spec import ClusterEntry


@pytest.fixture
def kube(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "b",
        "contexts": [{"name": n, "context": {"cluster": n, "user": n}} for n in
                     ("a", "b", "arn:aws:eks:eu-west-1:1:cluster/prod")],
        "clusters": [], "users": []}))
    return path


def test_no_option_and_one_context_are_the_classic_run(kube: Path) -> None:
    assert select_clusters(None, kubeconfig=str(kube)) == [ClusterRef("", None, str(kube))]
    assert select_clusters("a", kubeconfig=str(kube)) == [ClusterRef("", "a", str(kube))]


def test_a_list_names_each_context_checked_against_the_kubeconfig(kube: Path) -> None:
    refs = select_clusters(" a, b ", kubeconfig=str(kube))
    assert refs == [ClusterRef("a", "a", str(kube)), ClusterRef("b", "b", str(kube))]
    with pytest.raises(ClusterError) as info:
        select_clusters("a,prod", kubeconfig=str(kube))
    assert str(info.value) == (f"--kspec-context: no context 'prod' in {kube} (it has: a, b, "
                               "arn:aws:eks:eu-west-1:1:cluster/prod)")


def test_all_is_every_context_in_file_order_with_folder_safe_names(kube: Path) -> None:
    refs = select_clusters("all", kubeconfig=str(kube))
    assert [r.name for r in refs] == ["a", "b", "arn:aws:eks:eu-west-1:1:cluster/prod"]
    assert refs[2].folder == "arn_aws_eks_eu-west-1_1_cluster_prod"


def test_kubeconfig_from_the_environment(kube: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", f"{kube}:/elsewhere")  # merged as kubectl does
    assert [r.name for r in select_clusters("all", kubeconfig=None)] == [
        "a", "b", "arn:aws:eks:eu-west-1:1:cluster/prod"]


@pytest.mark.parametrize(("value", "message"), [
    ("a,,b", "--kspec-context a,,b: empty name in the list (write a,b,c)"),
    ("a,a", "--kspec-context a,a: 'a' is named twice"),
    ("a,all", "--kspec-context a,all: all means every context; give it alone"),
    ("a,x::y", "--kspec-context: context 'x::y' holds '::'"),
])
def test_bad_lists_are_one_line(kube: Path, value: str, message: str) -> None:
    with pytest.raises(ClusterError) as info:
        select_clusters(value, kubeconfig=str(kube))
    assert str(info.value).startswith(message)


def test_a_missing_kubeconfig_says_what_to_pass(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ClusterError) as info:
        select_clusters("all", kubeconfig=str(missing))
    assert str(info.value) == (f"--kspec-context all: {missing}: kubeconfig not found (pass "
                               "--kspec-kubeconfig PATH, or set KUBECONFIG)")
    # names typed out need no kubeconfig when nothing connects (--collect-only)
    assert len(select_clusters("a,b", kubeconfig=str(missing), check=False)) == 2
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ClusterError, match="no kubeconfig to read the contexts of"):
        select_clusters("all", kubeconfig=None)


def test_configured_clusters_resolve_their_own_kubeconfig_against_the_start_dir(
        kube: Path, tmp_path: Path) -> None:
    entries = [ClusterEntry("eu", context="a"), ClusterEntry("us", kubeconfig="us.kubeconfig")]
    refs = select_clusters(None, kubeconfig=str(kube), configured=entries, base=tmp_path)
    assert refs == [ClusterRef("eu", "a", str(kube)),
                    ClusterRef("us", None, str(tmp_path / "us.kubeconfig"),
                               "fix the kubeconfig of the DriftConfig's clusters: entry 'us'")]
    with pytest.raises(ClusterError) as info:
        select_clusters(None, kubeconfig=str(kube), configured=[ClusterEntry("eu", "zz")])
    assert str(info.value).startswith(f"clusters: eu: context: no context 'zz' in {kube}")
    # the option wins over the DriftConfig
    assert [r.name for r in select_clusters("a,b", kubeconfig=str(kube),
                                            configured=entries)] == ["a", "b"]
