"""deploy/: the Dockerfile, the compose stack and the gateway config they share.

No Docker engine runs these tests, so they read the files: the compose file
parses and wires the gateway to Jaeger, PostgreSQL and Acme HR; the image is
multi-stage, non-root and health-checked; the config passes `check`.
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
    assert jaeger["image"].startswith("jaegertracing/all-in-one:")
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
    assert re.search(r"^HEALTHCHECK .*\n.*/healthz", text, re.M)
    for source in re.findall(r"^COPY (?!--)(\S+(?: \S+)*?) \S+$", text, re.M):
        for path in source.split():
            assert (REPO / path).exists(), path


@pytest.mark.parametrize(
    ("app", "settings"), [("acme", "acme-hr/rest.yaml"), ("payroll", "payroll/sql.yaml")]
)
def test_the_config_carries_the_shipped_adapter_settings(app: str, settings: str) -> None:
    config = yaml.safe_load((DEPLOY / "gateway.yaml").read_text("utf-8"))
    shipped = yaml.safe_load((MAPPINGS_DIR / settings).read_text("utf-8"))
    assert config["apps"][app]["settings"] == shipped


def test_the_config_passes_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCIM_TOKEN", "t" * 32)
    monkeypatch.setenv("ACME_HR_URL", "http://acme-hr:8081/api/v1")
    monkeypatch.setenv("ACME_HR_API_KEY", "k" * 24)
    monkeypatch.setenv("PAYROLL_DSN", "postgresql://scim:pw@postgres:5432/scim")
    path = DEPLOY / "gateway.yaml"
    settings = load_settings(path)
    assert settings.server.host == "0.0.0.0" and settings.server.log_format == "json"
    assert set(build_runtimes(settings, source=str(path))) == {"acme", "payroll"}
