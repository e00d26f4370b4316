"""Every route each service declares reaches that service through nginx and through the Ingress.

The routes come from the services' own routers (not a hand list); the gateway tables are
parsed from deploy/nginx/taktline.conf and deploy/k8s/base/ingress.yaml.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from services import registry
from shared.settings import SERVICES

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def nginx_table() -> tuple[dict[str, str], dict[str, str]]:
    """(prefix locations, exact locations) → upstream name."""
    text = (DEPLOY / "nginx" / "taktline.conf").read_text()
    prefixes = dict(re.findall(r"location\s+(/\S*)\s*\{\s*proxy_pass\s+http://(\w+);", text))
    exact = dict(re.findall(r"location\s+=\s+(/\S*)\s*\{\s*proxy_pass\s+http://(\w+);", text))
    return prefixes, exact


def nginx_route(path: str) -> str | None:
    prefixes, exact = nginx_table()
    if path in exact:
        return exact[path]
    matches = [p for p in prefixes if path.startswith(p)]
    return prefixes[max(matches, key=len)] if matches else None  # nginx: the longest prefix wins


def ingress_route(path: str) -> str | None:
    ingress = yaml.safe_load((DEPLOY / "k8s" / "base" / "ingress.yaml").read_text())
    best: tuple[int, str] | None = None
    for rule in ingress["spec"]["rules"]:
        for entry in rule["http"]["paths"]:
            prefix = entry["path"].rstrip("/")
            # Kubernetes Prefix matching compares whole path elements.
            if entry["pathType"] == "Prefix" and (path == prefix or path.startswith(prefix + "/")):
                candidate = (len(prefix), entry["backend"]["service"]["name"])
                best = max(best, candidate) if best else candidate
    return best[1] if best else None


def declared_paths(service: str) -> list[str]:
    spec = registry.load_spec(service)
    paths = {getattr(route, "path", "") for router in spec.routers for route in router.routes}
    paths.add(f"/api/{service}/openapi.json")
    # A concrete URL for each template: path parameters become a sample value.
    return sorted(re.sub(r"\{[^}]+\}", "1", p) for p in paths if p)


@pytest.mark.parametrize("service", registry.available())
def test_every_route_reaches_its_service_through_both_gateways(service: str) -> None:
    paths = declared_paths(service)
    assert len(paths) > 3
    wrong_nginx = {p: nginx_route(p) for p in paths if nginx_route(p) != service}
    wrong_ingress = {p: ingress_route(p) for p in paths if ingress_route(p) != service}
    assert wrong_nginx == {}, "nginx routes these elsewhere"
    assert wrong_ingress == {}, "the Ingress routes these elsewhere"


def test_both_gateways_have_the_same_table() -> None:
    prefixes, _ = nginx_table()
    ingress = yaml.safe_load((DEPLOY / "k8s" / "base" / "ingress.yaml").read_text())
    ingress_table = {e["path"].rstrip("/"): e["backend"]["service"]["name"]
                     for rule in ingress["spec"]["rules"] for e in rule["http"]["paths"]}
    assert {p.rstrip("/"): s for p, s in prefixes.items()} == ingress_table
    assert set(ingress_table.values()) == set(SERVICES)


def test_unknown_paths_reach_no_service() -> None:
    assert nginx_route("/admin") is None and ingress_route("/admin") is None
    assert ingress_route("/api/toolsX") is None  # element-wise prefix, unlike nginx
