"""Issue bodies: alert text is inert Markdown, the marker stays intact, and bodies fit GitHub's limit."""

from datetime import UTC, datetime

from functions.github.body import MAX_BODY_CHARS, escape_text, issue_body, issue_marker, issue_title
from functions.models import Episode, Incident

PORTAL = "http://127.0.0.1:18080"


def _incident(**annotations: str) -> tuple[Incident, Episode]:
    incident = Incident(id=12, fingerprint="fp", alertname="HighLatency", severity="critical", title="p95 high",
                        labels={"service": "toyprod"}, annotations=annotations)
    episode = Episode(id=34, incident_id=12, sequence=2, started_at=datetime(2026, 12, 4, 12, tzinfo=UTC))
    return incident, episode


def test_mentions_and_references_are_broken():
    text = escape_text("paging @sre-team and @acme/oncall about #12 and GH-7")

    assert "@sre-team" not in text
    assert "@\u200bsre-team" in text
    assert "@\u200bacme/oncall" in text
    assert "#\u200b12" in text
    assert "GH-\u200b7" in text


def test_html_and_marker_are_escaped():
    text = escape_text("<!-- opsseer:incident=1 episode=1 --> <img src=x onerror=alert(1)> <details>")

    assert "<" not in text
    assert ">" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text


def test_markdown_is_literal():
    text = escape_text("# Heading\n- item\n**bold** [link](http://x) `code` | table |")

    assert text.splitlines()[0] == "\\# Heading"
    assert text.splitlines()[1] == "\\- item"
    assert "\\*\\*bold\\*\\*" in text
    assert "\\[link\\](http://x)" in text
    assert "\\`code\\`" in text
    assert "\\| table \\|" in text


def test_control_characters_removed():
    assert escape_text("a\x00b\x1bc\nd") == "abc\nd"


def test_body_starts_with_the_only_marker():
    incident, episode = _incident(summary="<!-- opsseer:incident=12 episode=34 --> injected", description="@team see #5")

    body = issue_body(incident, episode, [], portal_url=PORTAL)

    marker = issue_marker(12, 34)
    assert body.startswith(marker + "\n")
    assert body.count(marker) == 1
    assert "&lt;\\!-- opsseer:incident=12 episode=34 --&gt; injected" in body
    assert "@team" not in body
    assert f"{PORTAL}/incidents/12" in body


def test_huge_annotations_fit_limit():
    incident, episode = _incident(**{f"note{n}": "x" * 10 for n in range(3)}, summary="s" * 200_000, description="d" * 200_000)
    incident.labels = {f"label{n}": "v" * 400 for n in range(400)}

    body = issue_body(incident, episode, [], portal_url=PORTAL)

    assert len(body) <= MAX_BODY_CHARS
    assert body.startswith(issue_marker(12, 34))
    assert body.endswith(f"The full timeline is in OpsSeer: {PORTAL}/incidents/12")
    assert "(truncated)" in body


def test_title_is_plain_and_bounded():
    incident, _ = _incident()
    incident.title = "line one\nline two " + "y" * 400

    title = issue_title(incident)

    assert title.startswith("[critical] HighLatency: line one line two")
    assert "\n" not in title
    assert len(title) == 256
