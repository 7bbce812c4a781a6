"""The Argo CD Application and the Flux HelmRelease that install the chart: each rendered twice with its own
inputs (as Argo CD's repo server and Flux's helm-controller render: `helm template` with the release name,
namespace and values they carry, CRDs included) gives the same bytes, and the result is accepted by a real API
server with server-side apply, twice (a second sync changes nothing)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from release_readiness_dev.localcluster import LocalCluster
from tests.integration.conftest import REPO, Kubectl
from tests.integration.install import helm


def argocd_inputs() -> tuple[str, str, Path, dict[str, Any]]:
    app = yaml.safe_load((REPO / "deploy" / "argocd" / "release-readiness.yaml").read_text())
    source = app["spec"]["source"]
    assert source["path"] == "charts/release-readiness"
    assert "CreateNamespace=true" in app["spec"]["syncPolicy"]["syncOptions"]
    ignored = {(d["kind"], d["name"]): d["jqPathExpressions"] for d in app["spec"]["ignoreDifferences"]}
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        assert ignored[(kind, source["helm"]["releaseName"])] == [".webhooks[]?.clientConfig.caBundle"]
    return (
        source["helm"]["releaseName"],
        app["spec"]["destination"]["namespace"],
        REPO / source["path"],
        source["helm"]["valuesObject"],
    )


def flux_inputs() -> tuple[str, str, Path, dict[str, Any]]:
    docs = list(yaml.safe_load_all((REPO / "deploy" / "flux" / "release-readiness.yaml").read_text()))
    release = next(d for d in docs if d["kind"] == "HelmRelease")
    spec = release["spec"]
    assert spec["install"]["createNamespace"] is True
    return spec["releaseName"], spec["targetNamespace"], REPO / spec["chart"]["spec"]["chart"], spec["values"]


def render(release: str, namespace: str, chart: Path, values: dict[str, Any], workdir: Path) -> str:
    values_file = workdir / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    args = ["template", release, str(chart), "--namespace", namespace, "--include-crds", "--values", str(values_file)]
    return helm(*args).stdout


@pytest.fixture(scope="module")
def gitops_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path_factory.mktemp("gitops-cluster")) as cluster:
        yield cluster


@pytest.mark.parametrize("inputs", [argocd_inputs, flux_inputs], ids=["argocd", "flux"])
def test_rendered_twice_identically_and_applied(gitops_cluster: LocalCluster, tmp_path: Path, inputs: Any) -> None:
    release, namespace, chart, values = inputs()
    first = render(release, namespace, chart, values, tmp_path)
    second = render(release, namespace, chart, values, tmp_path)
    assert first == second, "the same inputs render the same manifests"
    objects = [d for d in yaml.safe_load_all(first) if d]
    kinds = {o["kind"] for o in objects}
    assert {"CustomResourceDefinition", "Deployment", "ValidatingWebhookConfiguration", "ConfigMap"} <= kinds
    assert "Secret" not in kinds, "no key material in the render"
    kubectl = Kubectl(gitops_cluster.kubeconfig)
    kubectl.run("create", "namespace", namespace, check=False)  # CreateNamespace=true / createNamespace: true
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    for _ in range(2):  # a second sync of the same render changes nothing and conflicts with nothing
        out = kubectl.run("apply", "--server-side", "--field-manager=gitops", "-f", "-", stdin=body)
        assert out.stdout.count("serverside-applied") == len(objects), out.stdout
    unchanged = kubectl.run("diff", "--server-side", "--field-manager=gitops", "-f", "-", stdin=body, check=False)
    assert unchanged.returncode == 0, unchanged.stdout
