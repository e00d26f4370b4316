"""The Kubernetes manifests validate offline and follow one skeleton per service; compose parses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from shared.settings import SERVICES

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
KUBERNETES_VERSION = "1.30"


def documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found.append((f"{path.relative_to(K8S)}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return found


@pytest.mark.parametrize(("name", "doc"), documents(), ids=[n for n, _ in documents()])
def test_manifest_validates_against_the_kubernetes_schema(name: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_kustomizations_list_only_files_that_exist() -> None:
    for kustomization in K8S.rglob("kustomization.yaml"):
        content = yaml.safe_load(kustomization.read_text())
        for entry in content.get("resources", []) + content.get("components", []):
            assert (kustomization.parent / entry).exists(), f"{kustomization}: {entry} missing"


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_deployment_follows_the_skeleton(service: str) -> None:
    docs = {d["kind"]: d for d in yaml.safe_load_all((K8S / "base" / f"{service}.yaml").read_text())}
    assert {"ServiceAccount", "Service", "Deployment", "PodDisruptionBudget"} <= set(docs)
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert [c["args"] for c in pod["initContainers"]] == [["migrate", service]]
    (container,) = pod["containers"]
    assert container["args"] == ["serve", service]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert all(d["metadata"]["name"] == service for d in docs.values())


def test_compose_names_every_service_and_the_gateway() -> None:
    compose = yaml.safe_load((K8S.parent / "compose.yaml").read_text())
    assert set(SERVICES) | {"postgres", "rabbitmq", "nginx"} <= set(compose["services"])
    for service in SERVICES:
        assert compose["services"][service]["command"][:2] == ["serve", service]
