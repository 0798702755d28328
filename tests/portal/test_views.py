"""The portal's HTML pages: content, escaping of incident data and self-contained assets."""

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from functions.db import Database
from functions.settings import Settings
from opsseer.server import create_app
from tests.portal.factories import T0, add_attachment, add_entry, add_incident, create_incident

STATIC_DIR = Path(__file__).resolve().parents[2] / "portal" / "static"
ABSOLUTE_URL = re.compile(r"https?://[^\s\"'<>)]*", re.IGNORECASE)


@pytest.fixture
def client(database: Database, settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, enqueue=lambda *args: None, database=database)
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        yield test_client


def test_root_redirects_to_incidents(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)

    assert response.status_code == 302
    assert response.headers["location"] == "/incidents"


def test_list_page_rows(client: TestClient, database: Database) -> None:
    firing = create_incident(database, title="Checkout latency above SLO", severity="critical", stale_since=T0)
    resolved = create_incident(
        database,
        title="Disk almost full",
        severity="warning",
        status="resolved",
        resolved_at=T0 + timedelta(minutes=90),
    )

    response = client.get("/incidents")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert f'href="/incidents/{firing.id}"' in html
    assert f'href="/incidents/{resolved.id}"' in html
    assert "Checkout latency above SLO" in html
    assert 'class="badge badge--firing"' in html
    assert 'class="badge badge--resolved"' in html
    assert 'class="severity severity--critical"' in html
    assert "1h 30m" in html
    assert "2026-12-04 12:00:00 UTC" in html
    assert html.count('data-role="stale" title=') == 2
    assert html.count(">stale</span>") == 2
    assert html.count(" hidden>stale</span>") == 1


def test_list_page_status_filter(client: TestClient, database: Database) -> None:
    firing = create_incident(database, title="still firing")
    resolved = create_incident(database, title="all good now", status="resolved", resolved_at=T0 + timedelta(minutes=1))

    html = client.get("/incidents", params={"status": "resolved"}).text

    assert f'href="/incidents/{resolved.id}"' in html
    assert f'href="/incidents/{firing.id}"' not in html
    assert '<a href="/incidents?status=resolved" aria-current="page">' in html


def test_list_page_empty(client: TestClient) -> None:
    html = client.get("/incidents", params={"status": "firing"}).text

    assert "No firing incidents." in html


def test_list_page_past_last_page(client: TestClient, database: Database) -> None:
    create_incident(database)

    html = client.get("/incidents", params={"offset": 50}).text

    assert "No incidents on this page." in html
    assert "No incidents yet." not in html


def test_list_page_shows_current_episode_start(client: TestClient, database: Database) -> None:
    create_incident(database, status="resolved", episodes=3, started_at=T0, resolved_at=T0 + timedelta(hours=2, minutes=1))

    html = client.get("/incidents").text

    assert '<th scope="col">Current episode started</th>' in html
    assert '<th scope="col">Current episode duration</th>' in html
    assert '<time datetime="2026-12-04T14:00:00Z">2026-12-04 14:00:00 UTC</time>' in html
    assert 'data-duration-since="2026-12-04T14:00:00Z"' in html
    assert ">1m</span>" in html
    assert "2026-12-04T12:00:00Z" not in html


def test_incident_page_shows_first_and_current_start(client: TestClient, database: Database) -> None:
    incident = create_incident(database, episodes=2, started_at=T0)

    html = client.get(f"/incidents/{incident.id}").text

    assert '<dt>First started</dt><dd><time datetime="2026-12-04T12:00:00Z">' in html
    assert '<dd data-role="last-started"><time datetime="2026-12-04T13:00:00Z">' in html
    assert "<dt>Current episode duration</dt>" in html


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"status": "bogus"}, "Invalid value &#39;bogus&#39; for the query parameter &#39;status&#39;. "
                              "Allowed values: firing, resolved."),
        ({"status": ""}, "Invalid value &#39;&#39; for the query parameter &#39;status&#39;."),
        ({"status": "Firing"}, "Invalid value &#39;Firing&#39; for the query parameter &#39;status&#39;."),
        ({"offset": "ten"}, "Invalid value &#39;ten&#39; for the query parameter &#39;offset&#39;. "
                            "Allowed values: an integer from 0 to 9223372036854775807."),
        ({"offset": "-1"}, "Invalid value &#39;-1&#39; for the query parameter &#39;offset&#39;."),
        ({"offset": "+5"}, "Invalid value &#39;+5&#39; for the query parameter &#39;offset&#39;."),
        ({"offset": "1_0"}, "Invalid value &#39;1_0&#39; for the query parameter &#39;offset&#39;."),
        ({"offset": "\u0661"}, "Invalid value &#39;\u0661&#39; for the query parameter &#39;offset&#39;."),
        ({"offset": str(2**63)}, f"Invalid value &#39;{2**63}&#39; for the query parameter &#39;offset&#39;."),
        ({"offset": "9" * 5000}, "for the query parameter &#39;offset&#39;."),
    ],
)
def test_list_page_invalid_query_html_422(client: TestClient, params: dict[str, str], message: str) -> None:
    response = client.get("/incidents", params=params)

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "<h1>Invalid query parameter</h1>" in response.text
    assert message in response.text


def test_list_page_invalid_query_escapes_value(client: TestClient) -> None:
    response = client.get("/incidents", params={"status": "<script>alert(1)</script>"})

    assert response.status_code == 422
    assert "<script>alert" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text


def test_list_page_invalid_query_truncates_value(client: TestClient) -> None:
    response = client.get("/incidents", params={"status": "x" * 5000})

    assert response.status_code == 422
    assert f"&#39;{'x' * 100}…&#39;" in response.text
    assert "x" * 101 not in response.text


def test_list_page_valid_offset_accepted(client: TestClient, database: Database) -> None:
    for index in range(3):
        create_incident(database, started_at=T0 + timedelta(minutes=index))

    response = client.get("/incidents", params={"offset": "2", "status": "firing"})

    assert response.status_code == 200
    assert "3–3 of 3" in response.text


@pytest.mark.parametrize("incident_id", ["abc", "0", "-1", str(2**63)])
def test_incident_page_invalid_id_html_422(client: TestClient, incident_id: str) -> None:
    response = client.get(f"/incidents/{incident_id}")

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>Invalid path parameter</h1>" in response.text
    assert f"Invalid value &#39;{incident_id}&#39; for the path parameter &#39;incident_id&#39;." in response.text
    assert "Allowed values: an integer from 1 to 9223372036854775807." in response.text


def test_invalid_parameter_logged_without_value(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="portal.views"):
        client.get("/incidents/secret-value")

    messages = [record.getMessage() for record in caplog.records if record.name == "portal.views"]
    assert messages == ["rejected a request to /incidents/{incident_id}: invalid path parameter incident_id"]


def test_api_invalid_status_stays_json_422(client: TestClient) -> None:
    response = client.get("/api/v1/incidents", params={"status": "bogus"})

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["field"] == "query.status"


def test_list_page_pagination(client: TestClient, database: Database) -> None:
    for index in range(51):
        create_incident(database, started_at=T0 + timedelta(minutes=index))

    first = client.get("/incidents", params={"status": "firing"}).text
    second = client.get("/incidents", params={"status": "firing", "offset": 50}).text

    assert "1–50 of 51" in first
    assert 'href="/incidents?offset=50&amp;status=firing">Older</a>' in first
    assert "51–51 of 51" in second
    assert 'href="/incidents?offset=0&amp;status=firing">Newer</a>' in second


def test_incident_page_escapes_incident_data(client: TestClient, database: Database) -> None:
    incident = create_incident(
        database,
        title="<img src=x onerror=alert(2)>",
        labels={"alertname": "HighLatency", "team": "<b>x</b>", "<i>key</i>": "value"},
        annotations={
            "summary": "<script>alert(1)</script>",
            "description": "quote \" and ' and & done",
            "nul": "before\x00after",
        },
    )

    response = client.get(f"/incidents/{incident.id}")

    assert response.status_code == 200
    html = response.text
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>x</b>" not in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert "&lt;i&gt;key&lt;/i&gt;" in html
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "quote &#34; and &#39; and &amp; done" in html
    assert "\x00" not in html
    assert "before\ufffdafter" in html


def test_incident_page_escapes_timeline(client: TestClient, database: Database) -> None:
    with database.session() as session:
        incident = add_incident(session)
        add_entry(
            session,
            incident,
            kind="summary",
            title="<script>alert(3)</script>",
            model="<b>model</b>",
            payload={"note": "</pre><script>alert(4)</script>"},
        )

    html = client.get(f"/incidents/{incident.id}").text

    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in html
    assert "&lt;b&gt;model&lt;/b&gt;" in html
    assert "&lt;/pre&gt;&lt;script&gt;alert(4)" in html


def test_incident_page_content(client: TestClient, database: Database) -> None:
    with database.session() as session:
        incident = add_incident(
            session,
            title="Checkout latency above SLO",
            status="resolved",
            episodes=2,
            resolved_at=T0 + timedelta(hours=1, minutes=4),
            labels={"service": "checkout", "severity": "critical"},
            annotations={"summary": "p99 above 500 ms", "runbook_url": "https://runbooks.example.com/latency?a=1&b=2"},
        )
        alert_entry = add_entry(session, incident, kind="alert", title="Alert HighLatency firing (episode 1)")
        attachment = add_attachment(session, incident)
        snapshot_entry = add_entry(
            session, incident, kind="snapshot", title="Metric snapshot", payload={"attachment_id": attachment.id}
        )
        failed_entry = add_entry(session, incident, kind="forecast", status="failed", title="Forecast failed")

    html = client.get(f"/incidents/{incident.id}").text

    assert "<h1>Checkout latency above SLO</h1>" in html
    assert "p99 above 500 ms" in html
    assert 'href="https://runbooks.example.com/latency?a=1&amp;b=2"' in html
    assert f'<img src="/api/v1/attachments/{attachment.id}"' in html
    assert f'id="entry-{alert_entry.id}"' in html
    assert f'id="entry-{snapshot_entry.id}"' in html
    assert f'class="entry entry--failed" id="entry-{failed_entry.id}"' in html
    assert html.index(f'id="entry-{alert_entry.id}"') < html.index(f'id="entry-{snapshot_entry.id}"')
    assert f'data-events-url="/api/v1/incidents/{incident.id}/events?after_id={failed_entry.id}"' in html
    assert 'data-duration-until="2026-12-04T13:04:00Z"' in html
    assert ">4m</span>" in html
    assert "No timeline entries yet." in html


def test_incident_page_links_only_http_urls(client: TestClient, database: Database) -> None:
    incident = create_incident(
        database,
        annotations={"runbook_url": "javascript:alert(1)", "dashboard": "data:text/html,<script>alert(1)</script>"},
        generator_url="javascript:alert(2)",
    )

    html = client.get(f"/incidents/{incident.id}").text

    assert 'href="javascript:' not in html
    assert 'href="data:' not in html
    assert "javascript:alert(1)" in html
    assert "Alert expression" not in html


def test_pages_load_no_external_assets(client: TestClient, database: Database) -> None:
    data_links = {"https://runbooks.example.com/high-latency", "http://prometheus.example.com/graph?g0.expr=up"}
    with database.session() as session:
        incident = add_incident(
            session,
            annotations={"runbook_url": "https://runbooks.example.com/high-latency"},
            generator_url="http://prometheus.example.com/graph?g0.expr=up",
        )
        add_entry(session, incident, kind="snapshot", payload={"attachment_id": add_attachment(session, incident).id})

    for path in ["/incidents", f"/incidents/{incident.id}", "/incidents/999999"]:
        html = client.get(path).text
        assert set(ABSOLUTE_URL.findall(html)) <= data_links, path
        for attribute in re.findall(r"\b(?:src|href)=\"([^\"]*)\"", html):
            if attribute not in data_links:
                assert attribute.startswith("/"), (path, attribute)


def test_static_files_are_self_contained() -> None:
    for path in STATIC_DIR.iterdir():
        text = path.read_text(encoding="utf-8")
        assert ABSOLUTE_URL.findall(text) == [], path.name
        assert "innerHTML" not in text, path.name


def test_pages_send_security_headers(client: TestClient, database: Database) -> None:
    incident = create_incident(database)

    for path in ["/incidents", f"/incidents/{incident.id}"]:
        headers = client.get(path).headers
        policy = headers["content-security-policy"]
        assert "script-src 'self'" in policy, path
        assert "default-src 'none'" in policy, path
        assert headers["x-content-type-options"] == "nosniff", path


def test_incident_page_missing_404(client: TestClient) -> None:
    response = client.get("/incidents/123456")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "There is no incident 123456." in response.text


def test_static_files_served(client: TestClient) -> None:
    html = client.get("/incidents").text
    css_url = re.search(r'href="(/static/portal\.css\?v=[0-9a-f]+)"', html).group(1)
    js_url = re.search(r'src="(/static/portal\.js\?v=[0-9a-f]+)"', html).group(1)

    css = client.get(css_url)
    js = client.get(js_url)

    assert css.status_code == 200
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    assert css.content == (STATIC_DIR / "portal.css").read_bytes()
    assert js.status_code == 200
    assert js.headers["content-type"] == "text/javascript; charset=utf-8"
    assert client.get(css_url, headers={"If-None-Match": css.headers["etag"]}).status_code == 304


@pytest.mark.parametrize("name", ["missing.css", "..%2F__init__.py", "%2e%2e%2Froutes.py"])
def test_static_unknown_name_404(client: TestClient, name: str) -> None:
    response = client.get(f"/static/{name}")

    assert response.status_code == 404
    assert "error" in response.json()


def test_incident_page_firing_duration_ticks(client: TestClient, database: Database) -> None:
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    incident = create_incident(database, started_at=started)

    html = client.get(f"/incidents/{incident.id}").text

    since = started.isoformat().replace("+00:00", "Z")
    assert f'data-role="duration" data-duration-since="{since}">3m' in html
