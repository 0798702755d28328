"""The runbooks in alerting/runbooks/: one per SLO alert, linked from its rule, with queries that Prometheus accepts."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from alerting import render
from toyprod.metrics import ToyprodMetrics

ALERTING_DIR = Path(render.__file__).resolve().parent
RUNBOOK_DIR = ALERTING_DIR / "runbooks"
RUNBOOK_URL_PREFIX = "https://github.com/opsseer/opsseer/blob/main/alerting/runbooks/"
REQUIRED_SECTIONS = ("Meaning", "Impact", "Diagnosis", "Mitigation", "Escalation")
PROMTOOL = shutil.which("promtool")

PROMQL_BLOCK = re.compile(r"^```promql\n(.*?)^```$", re.DOTALL | re.MULTILINE)
RECORDING_RULE_NAME = re.compile(r"\bsli:[a-z0-9_:]+")
TOYPROD_METRIC_NAME = re.compile(r"(?<![\w:])toyprod_[a-z0-9_]+")
RELATIVE_MARKDOWN_LINK = re.compile(r"\]\(([A-Za-z0-9_-]+\.md)(?:#[a-z0-9-]+)?\)")


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _alert_rules() -> list[dict]:
    rule_file = _load(ALERTING_DIR / "rules" / "slo.rules.yml")
    return [rule for group in rule_file["groups"] for rule in group["rules"] if "alert" in rule]


def _runbooks() -> list[Path]:
    return sorted(RUNBOOK_DIR.glob("*.md"))


def _recorded_names() -> set[str]:
    rule_file = _load(ALERTING_DIR / "rules" / "sli.rules.yml")
    return {rule["record"] for group in rule_file["groups"] for rule in group["rules"]}


def _toyprod_sample_names() -> set[str]:
    """Return every sample name toyprod exports, histogram suffixes such as `_bucket` included."""
    metrics = ToyprodMetrics()
    # Labelled metrics export no samples until a first observation creates a child.
    metrics.observe_request(route="/orders", method="GET", status=200, duration_s=0.1)

    exposition = generate_latest(metrics.registry).decode()
    return {sample.name for family in text_string_to_metric_families(exposition) for sample in family.samples}


def test_every_alert_has_existing_runbook():
    alerts = _alert_rules()

    assert alerts
    for alert in alerts:
        url = alert["annotations"]["runbook_url"]
        assert url.startswith(RUNBOOK_URL_PREFIX), url
        file_name = url.removeprefix(RUNBOOK_URL_PREFIX)
        assert file_name == f"{alert['alert']}.md"
        assert (RUNBOOK_DIR / file_name).is_file(), f"{alert['alert']}: {file_name} is missing from {RUNBOOK_DIR}"


def test_every_runbook_belongs_to_alert():
    alert_names = {alert["alert"] for alert in _alert_rules()}

    assert {path.stem for path in _runbooks()} == alert_names


@pytest.mark.parametrize("path", _runbooks(), ids=lambda path: path.stem)
def test_runbook_has_required_sections(path: Path):
    text = path.read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", text, re.MULTILINE)

    assert text.startswith(f"# {path.stem}\n")
    for section in REQUIRED_SECTIONS:
        assert section in headings, f"{path.name} has no '## {section}' section"


@pytest.mark.parametrize("path", _runbooks(), ids=lambda path: path.stem)
def test_runbook_names_existing_series(path: Path):
    text = path.read_text(encoding="utf-8")
    queries = "\n".join(PROMQL_BLOCK.findall(text))

    assert queries
    assert set(RECORDING_RULE_NAME.findall(text)) <= _recorded_names()
    assert set(TOYPROD_METRIC_NAME.findall(queries)) <= _toyprod_sample_names()


@pytest.mark.parametrize("path", _runbooks(), ids=lambda path: path.stem)
def test_runbook_links_resolve(path: Path):
    text = path.read_text(encoding="utf-8")

    for target in RELATIVE_MARKDOWN_LINK.findall(text):
        assert (RUNBOOK_DIR / target).is_file(), f"{path.name} links to missing {target}"


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian package prometheus)")
@pytest.mark.parametrize("path", _runbooks(), ids=lambda path: path.stem)
def test_runbook_queries_parse(tmp_path: Path, path: Path):
    queries = PROMQL_BLOCK.findall(path.read_text(encoding="utf-8"))
    # promtool checks PromQL syntax only inside a rule file, so each query becomes a recording rule.
    rules = [{"record": f"runbook:query_{index}", "expr": query} for index, query in enumerate(queries)]
    rule_file = tmp_path / "runbook.rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": path.stem, "rules": rules}]}), encoding="utf-8")

    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(rule_file)], capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr
