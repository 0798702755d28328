"""Block Kit rendering of incident messages, with Slack's escaping and size limits.

Every piece of alert text is escaped (&, <, >), so an annotation that contains `<!channel>` renders as text and
notifies nobody. Limits (Slack's Block Kit reference, 2025): a section's text is at most 3,000 characters, a header's
150, a button's label 75, and a message has at most 50 blocks. OpsSeer also keeps a message's total text under
12,000 characters, so a message stays readable. Text that does not fit ends with a link to the portal.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from functions.timeline import format_duration

MAX_BLOCKS = 50
MAX_SECTION_CHARS = 3000
MAX_HEADER_CHARS = 150
MAX_TOTAL_CHARS = 12000
MAX_FALLBACK_CHARS = 3000
MAX_LABELS = 12

ACK_ACTION = "opsseer_acknowledge"
RESOLVE_ACTION = "opsseer_resolve"
ASK_ACTION = "opsseer_ask_runbook"
PORTAL_ACTION = "opsseer_open_portal"

# Message metadata event types; the key in their payload finds a post again after a timeout.
ROOT_EVENT = "opsseer_incident"
THREAD_EVENT = "opsseer_timeline_entry"

SEVERITY_EMOJI = {"critical": ":red_circle:", "warning": ":large_orange_circle:", "info": ":large_blue_circle:"}


def escape(text: Any) -> str:
    """Escape Slack's control characters, so user text can never form a mention or a link."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str, label: str) -> str:
    """Return a mrkdwn link. The URL keeps its query string: & is escaped as Slack does, and <, > and | are
    percent-encoded because they would end the link."""
    safe_url = quote(url, safe=":/?#[]@!$&'()*+,;=%~-._").replace("&", "&amp;")
    return f"<{safe_url}|{escape(label)}>"


def truncate(text: str, limit: int, more_url: str) -> str:
    """Cut escaped mrkdwn text to limit characters, ending with a link to the full text, never inside an entity."""
    if len(text) <= limit:
        return text
    suffix = " … " + link(more_url, "full text in the portal")
    cut = text[: max(0, limit - len(suffix))]
    ampersand = cut.rfind("&", max(0, len(cut) - 5))
    if ampersand != -1 and ";" not in cut[ampersand:]:
        cut = cut[:ampersand]
    return cut + suffix


def section(text: str, more_url: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, MAX_SECTION_CHARS, more_url)}}


@dataclass
class IncidentView:
    """What the root message shows: the incident, its episode and the enrichment entries."""

    incident_id: int
    episode_id: int
    sequence: int
    title: str
    alertname: str
    severity: str
    status: str
    labels: dict[str, Any]
    annotations: dict[str, Any]
    started_at: datetime
    portal_url: str
    ended_at: datetime | None = None
    generator_url: str = ""
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    resolved_by: str | None = None
    # Timeline entries by kind, each {"status", "title", "payload", "model"}.
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def incident_url(self) -> str:
        return f"{self.portal_url.rstrip('/')}/incidents/{self.incident_id}"

    def attachment_url(self, attachment_id: int) -> str:
        return f"{self.portal_url.rstrip('/')}/api/v1/attachments/{attachment_id}"


@dataclass
class Message:
    text: str
    blocks: list[dict]


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "unknown"


def _header(view: IncidentView) -> dict:
    state = "RESOLVED" if view.status == "resolved" else "FIRING"
    emoji = ":white_check_mark:" if view.status == "resolved" else SEVERITY_EMOJI.get(view.severity, ":rotating_light:")
    # plain_text is never parsed for mentions or links, so it needs no escaping.
    text = f"{emoji} {state}: {view.title or view.alertname or 'alert'}"
    if len(text) > MAX_HEADER_CHARS:
        text = text[: MAX_HEADER_CHARS - 1] + "…"
    return {"type": "header", "text": {"type": "plain_text", "text": text, "emoji": True}}


def _fields(view: IncidentView) -> dict:
    status = "Resolved" if view.status == "resolved" else "Firing"
    if view.status == "resolved" and view.ended_at is not None:
        duration = format_duration((view.ended_at - view.started_at).total_seconds())
        status += f" after {duration}"
        if view.resolved_by:
            status += f" by {escape(view.resolved_by)}"
    elif view.acknowledged_by:
        status += f", acknowledged by {escape(view.acknowledged_by)} at {_when(view.acknowledged_at)}"
    fields = [
        f"*Severity*\n{escape(view.severity)}",
        f"*Status*\n{status}",
        f"*Started*\n{_when(view.started_at)}",
        f"*Episode*\n{view.sequence}",
    ]
    return {"type": "section", "fields": [{"type": "mrkdwn", "text": text[:2000]} for text in fields]}


def _labels(view: IncidentView) -> str:
    shown = sorted(view.labels.items())[:MAX_LABELS]
    text = ", ".join(f"`{escape(key)}={escape(value)}`" for key, value in shown)
    hidden = len(view.labels) - len(shown)
    if hidden > 0:
        text += f" and {hidden} more"
    if view.generator_url:
        text += " · " + link(view.generator_url, "Prometheus graph")
    return f"*Labels* {text}"


def _annotation_sections(view: IncidentView) -> list[str]:
    ordered = sorted(view.annotations.items(), key=lambda item: (item[0] not in ("summary", "description"), item[0]))
    return [f"*{escape(key)}*\n{escape(value)}" for key, value in ordered if str(value).strip()]


def _snapshot(view: IncidentView) -> str | None:
    entry = view.entries.get("snapshot")
    if entry is None:
        return None
    payload = entry["payload"]
    if entry["status"] != "ok":
        return f"*Metric snapshot* {escape(entry['title'])}"
    text = f"*Metric snapshot* `{escape(payload.get('query', ''))}`"
    if payload.get("threshold") is not None:
        text += f", threshold {escape(payload['threshold'])}"
    if payload.get("attachment_id"):
        text += f" · {link(view.attachment_url(payload['attachment_id']), 'chart (PNG)')}"
    return text


def _seconds(value: Any) -> str:
    return "not within the horizon" if value is None else f"in {format_duration(float(value))}"


def _forecast(view: IncidentView) -> str | None:
    entry = view.entries.get("forecast")
    if entry is None:
        return None
    if entry["status"] != "ok":
        return f"*Forecast* {escape(entry['title'])}"
    breach = entry["payload"].get("breach") or {}
    text = (
        f"*Forecast* ({escape(entry.get('model') or 'unknown model')}): p50 crosses {escape(breach.get('threshold'))} "
        f"{_seconds(breach.get('time_to_p50_seconds'))}, p90 {_seconds(breach.get('time_to_p90_seconds'))}"
    )
    if breach.get("probability") is not None:
        text += f", breach probability {float(breach['probability']):.0%}"
    warning = view.entries.get("proactive_warning")
    if warning is not None:
        text += f"\n:warning: {escape(warning['title'])}"
    return text


def _runbook(view: IncidentView) -> str | None:
    entry = view.entries.get("runbook")
    if entry is None:
        return None
    if entry["status"] != "ok":
        return f"*Runbook* {escape(entry['title'])}"
    return "*Runbook* " + answer_text(entry["payload"], entry.get("model"))


def answer_text(answer: dict[str, Any], model: str | None) -> str:
    """Render a runbook answer with its citation: source, heading and line range."""
    quoted = "\n".join(f"> {escape(line)}" for line in str(answer.get("answer", "")).splitlines() or [""])
    citation = (
        f"{escape(answer.get('source', 'unknown source'))} § {escape(answer.get('heading', ''))}, "
        f"lines {answer.get('line_start', '?')}–{answer.get('line_end', '?')}"
    )
    return f"{quoted}\n_Source: {citation} · model {escape(model or answer.get('model') or 'unknown')}_"


def _actions(view: IncidentView) -> dict:
    elements: list[dict] = []
    value = str(view.episode_id)
    if view.status != "resolved":
        if not view.acknowledged_by:
            elements.append(_button("Acknowledge", ACK_ACTION, value, style="primary"))
        resolve = _button("Resolve", RESOLVE_ACTION, value, style="danger")
        resolve["confirm"] = {
            "title": {"type": "plain_text", "text": "Resolve the incident?"},
            "text": {"type": "plain_text", "text": "OpsSeer records you as the person who resolved it."},
            "confirm": {"type": "plain_text", "text": "Resolve"},
            "deny": {"type": "plain_text", "text": "Cancel"},
        }
        elements.append(resolve)
    elements.append(_button("Ask runbook", ASK_ACTION, value))
    portal = _button("Open in portal", PORTAL_ACTION, value)
    portal["url"] = view.incident_url
    elements.append(portal)
    return {"type": "actions", "block_id": f"opsseer_episode_{view.episode_id}", "elements": elements}


def _button(label: str, action_id: str, value: str, *, style: str | None = None) -> dict:
    button = {"type": "button", "text": {"type": "plain_text", "text": label[:75]}, "action_id": action_id, "value": value}
    if style is not None:
        button["style"] = style
    return button


def _fit(blocks: list[dict], tail: list[dict], more_url: str) -> list[dict]:
    """Keep blocks while the message stays within the block and text budgets; end with a portal link if any were cut."""
    reserved = len(tail) + 1
    budget = MAX_TOTAL_CHARS - sum(block_chars(block) for block in tail) - 200
    kept, used = [], 0
    for block in blocks:
        size = block_chars(block)
        if len(kept) + reserved >= MAX_BLOCKS or used + size > budget:
            dropped = len(blocks) - len(kept)
            note = f"_{dropped} more sections are not shown._ " + link(more_url, "Full text in the portal")
            return kept + [section(note, more_url)] + tail
        kept.append(block)
        used += size
    return kept + tail


def block_chars(block: dict) -> int:
    """Count the characters of every text object in a block."""
    count = 0
    texts = [block.get("text")] + list(block.get("fields", [])) + list(block.get("elements", []))
    for item in texts:
        if isinstance(item, dict):
            text = item.get("text")
            count += len(text["text"]) if isinstance(text, dict) else len(text or "")
    return count


def root_message(view: IncidentView) -> Message:
    """Render the episode's root message: the page itself, updated in place as the episode changes."""
    more = view.incident_url
    body = [_fields(view)]
    texts = [_labels(view), *_annotation_sections(view), _snapshot(view), _forecast(view), _runbook(view)]
    body += [section(text, more) for text in texts if text]
    tail = [
        _actions(view),
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"OpsSeer incident {view.incident_id} · {link(more, 'portal')}"}],
        },
    ]
    blocks = [_header(view)] + _fit(body, tail, more)
    return Message(text=fallback_text(view), blocks=blocks)


def fallback_text(view: IncidentView) -> str:
    """Plain text for notifications and clients without Block Kit."""
    state = "RESOLVED" if view.status == "resolved" else "FIRING"
    text = f"[{state}] {escape(view.severity)}: {escape(view.title or view.alertname)}"
    if view.status == "resolved" and view.ended_at is not None:
        text += f" (resolved after {format_duration((view.ended_at - view.started_at).total_seconds())})"
    return truncate(text + " " + link(view.incident_url, "portal"), MAX_FALLBACK_CHARS, view.incident_url)


def entry_message(entry: dict[str, Any], incident_url: str) -> Message:
    """Render one timeline entry as a thread reply."""
    title = f"*{escape(entry['kind'].replace('_', ' '))}* {escape(entry['title'])}"
    if entry["status"] not in ("ok",):
        title += f" _({escape(entry['status'].replace('_', ' '))})_"
    text = title
    if entry["kind"] in ("runbook", "runbook_answer") and entry["status"] == "ok" and entry["payload"].get("answer"):
        text += "\n" + answer_text(entry["payload"], entry.get("model"))
    elif entry.get("model"):
        text += f"\n_model {escape(entry['model'])}_"
    fallback = truncate(title, MAX_FALLBACK_CHARS, incident_url)
    return Message(text=fallback, blocks=[section(text, incident_url)])


def root_metadata(episode_id: int) -> dict:
    return {"event_type": ROOT_EVENT, "event_payload": {"key": f"episode:{episode_id}"}}


def thread_metadata(entry_id: int) -> dict:
    return {"event_type": THREAD_EVENT, "event_payload": {"key": f"entry:{entry_id}"}}
