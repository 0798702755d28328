"""Opening an episode's GitHub issue exactly once, through the real PyGithub client and the loopback fake."""

import threading

from functions.github.body import issue_marker
from functions.tasks import github as github_tasks
from functions.tasks import pipelines
from functions.timeline import add_entry, get_entry, step_key
from tests.functions.github.github_helpers import github_entries, issue_rows, open_episode, recorded_retries

ISSUES = r"/repos/acme/incidents/issues"


def _add_enrichment(database, episode_id: int, incident_id: int = 1) -> None:
    """Write the entries the snapshot, forecast and runbook steps leave before the notify stage."""
    with database.session() as session:
        for kind, title, payload, model in (
            ("snapshot", "Snapshot of 1 series", {"query": "histogram_quantile(0.95, x)", "threshold": 0.25, "attachment_id": 7}, None),
            (
                "forecast",
                "Forecast: p90 crosses 0.25 s in 4m",
                {
                    "query": "histogram_quantile(0.95, x)",
                    "forecast": {"model": "amazon/chronos-bolt-small"},
                    "breach": {"threshold": 0.25, "probability": 0.9, "time_to_p50_seconds": 600, "time_to_p90_seconds": 240},
                },
                "amazon/chronos-bolt-small@abc123",
            ),
            (
                "runbook",
                "Runbook answer",
                {"answer": "Scale out the orders deployment.", "source": "toyprod.md", "heading": "Latency",
                 "line_start": 10, "line_end": 12, "model": "all-MiniLM-L6-v2"},
                "sentence-transformers/all-MiniLM-L6-v2",
            ),
        ):
            add_entry(session, incident_id=incident_id, episode_id=episode_id, key=step_key(episode_id, kind),
                      kind=kind, title=title, payload=payload, model=model)


def test_unconfigured_github_records_not_configured(trigger, database, fake_github):
    episode_id = open_episode(trigger)

    pipelines.enrichment_canvas(episode_id).apply().get()

    entries = github_entries(database)
    assert [(entry.status, entry.payload["step"]) for entry in entries] == [("not_configured", "github")]
    assert "OPSSEER_GITHUB_TOKEN" in entries[0].title
    assert fake_github.requests == []
    with database.session() as session:
        summary = get_entry(session, key=step_key(episode_id, "summary"))
    assert summary.payload["steps"]["github"] == "not_configured"


def test_issue_created_with_body_labels_assignees(trigger, database, github):
    episode_id = open_episode(trigger, annotations={"summary": "p95 latency above 250 ms", "runbook_url": "https://runbooks.example/latency"})
    _add_enrichment(database, episode_id)

    result = github_tasks.sync_github_issue.apply(args=[episode_id]).get()

    assert result["status"] == "ok"
    [issue] = github.real_issues()
    assert result["url"] == issue["html_url"]
    assert issue["title"] == "[critical] HighLatency: p95 latency above 250 ms"
    assert [label["name"] for label in issue["labels"]] == ["incident", "sev:critical"]
    assert [user["login"] for user in issue["assignees"]] == ["alice", "bob"]
    body = issue["body"]
    assert body.startswith(issue_marker(1, episode_id) + "\n")
    assert "http://127.0.0.1:" in body
    assert "/incidents/1" in body
    assert "/api/v1/attachments/7" in body
    assert "`amazon/chronos-bolt-small@abc123`" in body
    assert "probability of crossing 0.25: 90%, median forecast crosses in 10m, p90 crosses in 4m" in body
    assert "> Scale out the orders deployment." in body
    assert "`sentence-transformers/all-MiniLM-L6-v2`" in body
    [entry] = github_entries(database)
    assert entry.status == "ok"
    assert entry.payload["url"] == issue["html_url"]
    assert entry.payload["number"] == issue["number"]
    assert entry.payload["action"] == "created"


def test_second_run_creates_nothing(trigger, database, github):
    episode_id = open_episode(trigger)
    github_tasks.sync_github_issue.apply(args=[episode_id]).get()

    again = github_tasks.sync_github_issue.apply(args=[episode_id]).get()

    assert again == {"step": "github", "status": "ok"}
    assert len(github.real_issues()) == 1
    assert github.count("POST", ISSUES) == 1
    assert len(github_entries(database)) == 1


def test_two_workers_at_once_create_one_issue(trigger, database, github):
    episode_id = open_episode(trigger)
    # The create takes 0.6 s, so the second worker arrives while the first one's call is in flight.
    github.fault("POST", ISSUES, delay=0.6)
    barrier = threading.Barrier(2)
    results = []

    def worker(task_id: str) -> None:
        barrier.wait()
        results.append(github_tasks.sync_github_issue.apply(args=[episode_id], task_id=task_id).get())

    threads = [threading.Thread(target=worker, args=(f"duplicate-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(result["status"] for result in results) == ["ok", "ok"]
    assert len(github.real_issues()) == 1
    assert github.count("POST", ISSUES) == 1
    assert len(github_entries(database)) == 1
    [row] = issue_rows(database)
    assert row.state == "open"
    assert row.attempts == 1


def test_timed_out_create_is_found_not_repeated(trigger, database, github):
    episode_id = open_episode(trigger)
    # GitHub stores the issue but answers after the client's 1 s timeout.
    github.fault("POST", ISSUES, delay=2.5)

    with recorded_retries() as countdowns:
        result = github_tasks.sync_github_issue.apply(args=[episode_id]).get()

    assert result["status"] == "ok"
    assert countdowns == [0.2]
    assert len(github.real_issues()) == 1
    assert github.count("POST", ISSUES) == 1
    assert github.count("GET", "/search/issues") == 1
    [entry] = github_entries(database)
    assert entry.status == "ok"
    assert entry.payload["action"] == "adopted"
    assert entry.payload["number"] == 1
    [row] = issue_rows(database)
    assert row.attempts == 2


def test_lookup_skips_pull_requests_with_marker(trigger, database, github):
    episode_id = open_episode(trigger)
    # A pull request that quotes the marker, and a search index that has not seen the new issue yet.
    github.add_pull_request(issue_marker(1, episode_id) + "\nquoted in a pull request")
    github.fault("POST", ISSUES, delay=2.5)
    github.fault("GET", "/search/issues", status=200, body={"total_count": 0, "incomplete_results": False, "items": []})

    github_tasks.sync_github_issue.apply(args=[episode_id])

    assert len(github.real_issues()) == 1
    [entry] = github_entries(database)
    assert entry.payload["action"] == "adopted"
    assert entry.payload["number"] == github.real_issues()[0]["number"]
    assert github.count("GET", ISSUES) == 1
