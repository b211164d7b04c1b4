"""`scim-gateway render --method GET`: the search a filter starts, as the REST adapter sends it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway.cli import main

KEY = "acme-render-key-0042-secret"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ACME_HR_URL", "http://127.0.0.1:9/api/v1")  # never called
    monkeypatch.setenv("ACME_HR_API_KEY", KEY)
    app = {
        "adapter": "rest",
        "mapping": "acme-hr",
        "settings": {"file": "acme-hr/rest.yaml"},
        "auth": {"tokens": [{"name": "idp", "secret": "render-token-0123456789abcdef"}]},
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump({"apps": {"acme": app}}), "utf-8")
    return path


def render(config: Path, path: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["render", "-c", str(config), "--app", "acme", "--method", "GET", "--path", path])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_pushed_down_filter_shows_as_the_apps_query_parameter(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = render(config, '/Users?filter=userName eq "bjensen"&count=10', capsys)
    assert code == 0
    assert out.splitlines()[:4] == [
        "# call 1 of 1",
        "GET http://127.0.0.1:9/api/v1/accounts?login=bjensen&offset=0&limit=10",
        "Accept: application/json",
        "X-Api-Key: ****",
    ]
    assert KEY not in out and "checks" not in out


def test_a_filter_partly_pushed_down_says_what_the_gateway_checks(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = render(config, '/Users?filter=userName eq "b" and title co "x"', capsys)
    assert code == 0
    assert "GET http://127.0.0.1:9/api/v1/accounts?login=b&offset=0&limit=200" in out
    assert 'the gateway checks \'userName eq "b" and title co "x"\' on the candidates' in out


def test_an_id_filter_reads_the_record_and_paging_follows_the_apps_style(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = render(config, '/Users?filter=id eq "acc_7"', capsys)
    assert "GET http://127.0.0.1:9/api/v1/accounts/acc_7\n" in out
    _, out, _ = render(config, "/Groups?startIndex=201", capsys)
    assert "GET http://127.0.0.1:9/api/v1/teams?page=3&per_page=100\n" in out


def test_a_filter_the_app_cannot_answer_is_the_scim_error(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = render(config, '/Users?filter=title co "x"', capsys)
    assert code == 2 and "cannot render: this app cannot filter on title (SCIM 400)" in err
    code, _, err = render(config, "/Users/acc_1", capsys)
    assert code == 2 and "a GET dry run lists a type" in err
