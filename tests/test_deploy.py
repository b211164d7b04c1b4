"""deploy/: the Dockerfile, the compose stack and the gateway config they share.

No Docker engine runs here. The compose file and the Dockerfile are read; the
image is then *run*: its final stage's filesystem is laid out at the same paths
(in a private mount namespace, so /srv, /opt and /data are the test's own), and
its ENTRYPOINT and CMD run as its user, uid 10001, with its ENV, until /readyz
answers and its HEALTHCHECK passes; Acme HR and PostgreSQL are real, on loopback.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.app import build_runtimes
from gateway.config import load_settings
from gateway.mapping.engine import MAPPINGS_DIR

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
REPO = DEPLOY.parent


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text("utf-8"))
    return data


def test_compose_runs_the_gateway_postgres_jaeger_and_acme_hr() -> None:
    services = compose()["services"]
    assert set(services) == {"gateway", "postgres", "jaeger", "acme-hr"}
    jaeger = services["jaeger"]
    assert re.fullmatch(r"jaegertracing/jaeger:2\.\d+\.\d+", jaeger["image"])  # v2, OTLP in
    assert {p.rsplit(":", 1)[-1] for p in jaeger["ports"]} == {"4317", "4318", "16686"}
    env = services["gateway"]["environment"]
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
    assert env["ACME_HR_URL"].startswith("http://acme-hr:8081/")
    assert "@postgres:5432/" in env["PAYROLL_DSN"]
    assert services["acme-hr"]["entrypoint"][-1] == "gateway.demo.legacy_app"
    for name in ("acme-hr", "postgres"):
        assert services["gateway"]["depends_on"][name] == {"condition": "service_healthy"}
        assert services[name]["healthcheck"]["test"]


def test_compose_publishes_on_loopback_only_and_mounts_files_that_exist() -> None:
    for service in compose()["services"].values():
        for port in service.get("ports", []):
            assert str(port).split(":")[0] == "127.0.0.1", port
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).is_file(), source


def test_the_image_is_multi_stage_non_root_and_health_checked() -> None:
    text = (DEPLOY / "Dockerfile").read_text("utf-8")
    assert len(re.findall(r"^FROM ", text, re.M)) == 2
    assert "COPY --from=build /opt/venv /opt/venv" in text
    (user,) = re.findall(r"^USER (\S+)", text, re.M)
    assert not user.startswith(("0", "root"))
    assert re.search(r'^HEALTHCHECK .*\n +CMD \["scim-gateway", "health"\]$', text, re.M)
    for source in re.findall(r"^COPY (?!--)(\S+(?: \S+)*?) \S+$", text, re.M):
        for path in source.split():
            assert (REPO / path).exists(), path


def test_compose_has_no_demo_secrets_and_requires_them() -> None:
    text = (DEPLOY / "compose.yaml").read_text("utf-8")
    assert ":-" not in text, "no fallback values: a secret left unset must stop compose"
    for name in ("SCIM_TOKEN", "ACME_HR_API_KEY", "POSTGRES_PASSWORD"):
        assert re.search(r"\$\{" + name + r":\?[^}]+\}", text), name
    assert "gateway-state:/data" in compose()["services"]["gateway"]["volumes"]


def test_the_base_image_is_pinned_by_digest() -> None:
    text = (DEPLOY / "Dockerfile").read_text("utf-8")
    (base,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", base)
    assert re.findall(r"^FROM (\S+)", text, re.M) == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]


@pytest.mark.parametrize(
    ("app", "settings"), [("acme", "acme-hr/rest.yaml"), ("payroll", "payroll/sql.yaml")]
)
def test_the_config_uses_the_shipped_adapter_settings(
    app: str, settings: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SCIM_TOKEN", "ACME_HR_URL", "ACME_HR_API_KEY", "PAYROLL_DSN"):
        monkeypatch.setenv(name, "x" * 32)
    shipped = yaml.safe_load((MAPPINGS_DIR / settings).read_text("utf-8"))
    assert load_settings(DEPLOY / "gateway.yaml").apps[app].settings == shipped


def test_the_config_passes_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCIM_TOKEN", "t" * 32)
    monkeypatch.setenv("ACME_HR_URL", "http://acme-hr:8081/api/v1")
    monkeypatch.setenv("ACME_HR_API_KEY", "k" * 24)
    monkeypatch.setenv("PAYROLL_DSN", "postgresql://scim:pw@postgres:5432/scim")
    path = DEPLOY / "gateway.yaml"
    settings = load_settings(path)
    assert settings.server.host == "0.0.0.0" and settings.server.log_format == "json"
    assert set(build_runtimes(settings, source=str(path))) == {"acme", "payroll"}
    assert settings.state.url is not None
    assert settings.state.url.get_secret_value().startswith("sqlite:////data/")
