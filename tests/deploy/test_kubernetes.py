"""deploy/kubernetes/bridge.yaml: Deployments for web and workers, a Service, a Secret,
probes; checked by parsing it (no cluster here)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "bridge.yaml"


@pytest.fixture(scope="module")
def objects() -> dict[tuple[str, str], dict]:
    docs = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def deployment(objects, component: str) -> dict:
    return objects[("Deployment", f"entra-scim-bridge-{component}")]


def container(objects, component: str) -> dict:
    (c,) = deployment(objects, component)["spec"]["template"]["spec"]["containers"]
    return c


def test_the_example_has_a_secret_a_service_and_three_deployments(objects):
    assert sorted(objects) == [
        ("Deployment", "entra-scim-bridge-deliver"),
        ("Deployment", "entra-scim-bridge-sync"),
        ("Deployment", "entra-scim-bridge-web"),
        ("Secret", "entra-scim-bridge"),
        ("Service", "entra-scim-bridge"),
    ]


def test_every_container_runs_one_image_with_the_secrets_settings(objects):
    images = {container(objects, c)["image"] for c in ("web", "deliver", "sync")}
    assert len(images) == 1
    secret = objects[("Secret", "entra-scim-bridge")]
    assert {"REDIS_URL", "BRIDGE_SECRET_KEYS"} <= set(secret["stringData"])
    for c in ("web", "deliver", "sync"):
        assert container(objects, c)["envFrom"] == [{"secretRef": {"name": "entra-scim-bridge"}}]


def test_the_workers_run_their_roles(objects):
    assert container(objects, "deliver")["command"] == ["python", "-m", "workers.run", "deliver"]
    assert container(objects, "sync")["command"] == ["python", "-m", "workers.run", "sync"]


def test_the_web_tier_is_live_on_healthz_and_ready_on_readyz(objects):
    web = container(objects, "web")
    assert web["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert web["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert web["ports"] == [{"name": "http", "containerPort": 8000}]


def test_workers_are_live_while_their_lanes_heart_beat(objects):
    for c in ("deliver", "sync"):
        probe = container(objects, c)["livenessProbe"]["exec"]["command"]
        assert probe == ["python", "-m", "bridge.runtime.healthcheck", "worker"]


def test_the_service_selects_the_web_pods(objects):
    service = objects[("Service", "entra-scim-bridge")]
    labels = deployment(objects, "web")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_every_deployment_selects_its_own_pods_and_runs_as_non_root(objects):
    for c in ("web", "deliver", "sync"):
        spec = deployment(objects, c)["spec"]
        assert (
            spec["selector"]["matchLabels"].items()
            <= spec["template"]["metadata"]["labels"].items()
        )
        assert spec["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
        assert spec["template"]["spec"]["terminationGracePeriodSeconds"] >= 25
