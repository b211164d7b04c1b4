"""deploy/kubernetes/: the manifests validate against Kubernetes' own schemas, and fit together.

The validator is kubernetes-validate (a pinned PyPI package, in the test extras): it
checks each object, strictly (unknown fields are errors), against the JSON schemas of
the Kubernetes API that it ships, with no cluster and no download.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gateway.app import build_runtimes
from gateway.config import ConfigError, load_settings
from gateway.mapping.engine import MAPPINGS_DIR

K8S = Path(__file__).resolve().parents[1] / "deploy" / "kubernetes"
#: The Kubernetes version the manifests are checked against.
KUBERNETES = "1.33.0"


def documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            found += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text("utf-8"))]
    return found


def kind(name: str) -> dict[str, Any]:
    (doc,) = [d for _, d in documents() if d["kind"] == name and "postgres" not in str(d)]
    return doc


@pytest.mark.parametrize(
    ("file", "doc"), documents(), ids=lambda v: v if isinstance(v, str) else v["kind"]
)
def test_each_manifest_is_valid_kubernetes(file: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_an_invalid_manifest_is_caught() -> None:
    """The validator really validates: a typo'd field fails it."""
    broken = kind("Deployment")
    broken["spec"]["replica"] = broken["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def test_the_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text("utf-8"))
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def test_replicas_are_ready_on_readyz_bounded_and_kept_through_disruptions() -> None:
    deployment = kind("Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] >= 2
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    assert pod["securityContext"]["runAsUser"] == 10001 and pod["securityContext"]["runAsNonRoot"]
    labels = spec["template"]["metadata"]["labels"]
    assert kind("PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert kind("Service")["spec"]["selector"].items() <= labels.items()
    assert spec["selector"]["matchLabels"].items() <= labels.items()


def test_tokens_come_from_a_secret_that_ships_no_values() -> None:
    secret = kind("Secret")
    (container,) = kind("Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
    assert set(secret["stringData"]) >= {"SCIM_TOKEN", "STATE_URL"}
    assert all(value == "" for value in secret["stringData"].values())
    text = yaml.safe_dump(kind("ConfigMap")) + yaml.safe_dump(kind("Deployment"))
    assert "password" not in text.lower().replace("postgres_password", "")


def test_the_config_uses_the_shared_postgresql_store_and_passes_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Laid out as in the pod: the ConfigMap's file over the image's, beside mappings/."""
    config = tmp_path / "gateway.yaml"
    config.write_text(kind("ConfigMap")["data"]["gateway.yaml"], "utf-8")
    (tmp_path / "mappings").symlink_to(MAPPINGS_DIR)
    (container,) = kind("Deployment")["spec"]["template"]["spec"]["containers"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
    assert mount["mountPath"] == "/srv/scim-gateway/gateway.yaml"  # the image's config path
    for item in container["env"]:
        monkeypatch.setenv(item["name"], item["value"])
    monkeypatch.setenv("SCIM_TOKEN", "k8s-token-" + "x" * 30)
    monkeypatch.setenv("ACME_HR_API_KEY", "k" * 24)
    monkeypatch.setenv("STATE_URL", "postgresql://scim:pw@scim-gateway-postgres:5432/scim")
    settings = load_settings(config)
    assert settings.state.url is not None
    assert settings.state.url.get_secret_value().startswith("postgresql://")
    assert set(build_runtimes(settings, source=str(config))) == {"acme"}
    monkeypatch.setenv("SCIM_TOKEN", "")  # the Secret as shipped: refused, not an open door
    with pytest.raises(ConfigError, match=r"apps\.acme\.auth\.tokens\.0\.secret: is empty"):
        load_settings(config)
