"""Speech-to-text suite: word error rate and real-time factor of the real SpeechToText service over HTTP.

The service (`bentos.asr.service:SpeechToText`) is served with `bentoml serve` through `opsseer.bento.served`,
and each corpus clip is uploaded to POST /transcribe as the gateway's callers do. One warm-up upload goes first
and is not counted. The real-time factor is the request's seconds (client side) divided by the clip's seconds.
"""

import logging
import os
import time
from pathlib import Path
from typing import Any

import httpx

from eval import metrics, plots
from eval.report import SuiteResult, table
from eval.suites import EvalContext, require_service

logger = logging.getLogger(__name__)

TITLE = "Speech-to-text: word error rate and real-time factor on corpus clips"
SERVICE = "bentos.asr.service:SpeechToText"
TRANSCRIPTS = "audio/transcripts.jsonl"
AUDIO_DIR = "audio"
CONTENT_TYPES = {".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg"}
# Embedding the whole corpus of runbooks (or loading Whisper) on a busy 2-core machine took minutes.
STARTUP_TIMEOUT_SECONDS = 900
REQUEST_TIMEOUT_SECONDS = 600
WORST_SHOWN = 5


def transcribe(client: httpx.Client, path: Path) -> tuple[dict[str, Any], float]:
    """Upload one clip and return the transcript with the request's seconds."""
    content_type = CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
    started = time.perf_counter()
    response = client.post("/transcribe", files={"audio": (path.name, path.read_bytes(), content_type)})
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"speech-to-text returned HTTP {response.status_code} for {path.name}: {response.text[:300]}")
    return response.json(), elapsed


def split_clips(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Separate clips with one reference string from those the WER cannot score (per-channel references).

    NOTE: the corpus's two-speaker stereo clip is left out of the WER, because the service transcribes one
    downmixed track and no single reference exists for it; the report lists it.
    """
    scored, unscored = [], []
    for record in records:
        (scored if isinstance(record.get("reference_transcript"), str) else unscored).append(record)
    return scored, unscored


def run(context: EvalContext) -> SuiteResult:
    require_service(SERVICE, "speech-to-text")
    corpus = context.corpus()
    records = context.limited(corpus.jsonl(TRANSCRIPTS))
    scored, unscored = split_clips(records)
    audio_root = corpus.path(AUDIO_DIR)

    from opsseer.bento import served

    env = {"HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    started = time.perf_counter()
    with served(SERVICE, context.work_dir / "asr-logs", env=env, ready_timeout=STARTUP_TIMEOUT_SECONDS) as url:
        startup_seconds = time.perf_counter() - started
        with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_SECONDS) as client:
            transcribe(client, audio_root / records[0]["file"])
            outcomes = []
            for record in context.progress(records, "audio clips", total=len(records)):
                transcript, seconds = transcribe(client, audio_root / record["file"])
                duration = transcript.get("duration_seconds") or record.get("duration_s")
                outcome = {
                    "file": record["file"],
                    "reference": record["reference_transcript"],
                    "hypothesis": transcript["text"],
                    "duration_seconds": duration,
                    "seconds": seconds,
                    "real_time_factor": seconds / duration if duration else None,
                    "model": transcript.get("model"),
                    "language": transcript.get("language"),
                }
                if isinstance(record["reference_transcript"], str):
                    errors = metrics.word_errors([record["reference_transcript"]], [transcript["text"]])
                    outcome.update(wer=errors.wer, substitutions=errors.substitutions, deletions=errors.deletions,
                                   insertions=errors.insertions, reference_words=errors.reference_words)
                outcomes.append(outcome)

    scored_outcomes = [o for o in outcomes if "wer" in o]
    total = metrics.word_errors([o["reference"] for o in scored_outcomes], [o["hypothesis"] for o in scored_outcomes])
    audio_seconds = sum(o["duration_seconds"] or 0 for o in outcomes)
    request_seconds = sum(o["seconds"] for o in outcomes)
    summary = {
        "clips": len(outcomes),
        "clips_scored": len(scored_outcomes),
        "wer": total.wer,
        "reference_words": total.reference_words,
        "substitutions": total.substitutions,
        "deletions": total.deletions,
        "insertions": total.insertions,
        "audio_seconds": audio_seconds,
        "real_time_factor": request_seconds / audio_seconds if audio_seconds else None,
        "startup_seconds": startup_seconds,
    }
    summary["headline"] = (
        f"WER {total.wer:.3f} over {total.reference_words} words in {len(scored_outcomes)} clips, "
        f"real-time factor {summary['real_time_factor']:.3f}"
    )
    models = sorted({o["model"] for o in outcomes if o["model"]})
    plot = plots.bar_chart(
        [Path(o["file"]).name for o in scored_outcomes], [o["wer"] for o in scored_outcomes],
        title=f"WER per clip (corpus-level WER {total.wer:.3f})", xlabel="word error rate",
        path=context.plots_dir / "asr-wer.png",
    )
    notes = [
        f"{Path(record['file']).name} is not scored: its reference is per stereo channel "
        f"({', '.join(record['reference_transcript'])}), while the service transcribes one downmixed track"
        for record in unscored
    ]
    return SuiteResult(suite="asr", title=TITLE, options=context.options(), summary=summary,
                       details={"clips": outcomes}, plots=[plot], notes=notes,
                       models={"speech_to_text": ", ".join(models)})


def render(result: dict[str, Any]) -> str:
    summary = result["summary"]
    clips = result["details"]["clips"]
    scored = sorted((c for c in clips if "wer" in c), key=lambda c: c["wer"], reverse=True)
    lines = [
        f"{summary['clips']} clips from the corpus (`{TRANSCRIPTS}`), {summary['audio_seconds']:.1f} s of audio, "
        f"uploaded one at a time to `{SERVICE}` POST /transcribe.",
        "",
        "- **WER**: (substitutions + deletions + insertions) / reference words, counted over all scored clips",
        "  together (corpus level, not the mean of per-clip WERs), with jiwer's word alignment.",
        f"- **normalisation** of reference and hypothesis: {metrics.WER_NORMALISATION}",
        "- References are each corpus record's `reference_transcript` (LJ Speech's written form, not its",
        "  spelled-out `normalized_transcript`).",
        "- **real-time factor**: request seconds / audio seconds, client side, after one warm-up upload; below 1 is",
        "  faster than real time.",
        "",
        table(["clips scored", "reference words", "substitutions", "deletions", "insertions", "WER",
               "real-time factor", "start-up s"],
              [[summary["clips_scored"], summary["reference_words"], summary["substitutions"], summary["deletions"],
                summary["insertions"], summary["wer"], summary["real_time_factor"], summary["startup_seconds"]]]),
        "",
        "### Per clip",
        "",
        table(["clip", "audio s", "words", "S", "D", "I", "WER", "RTF"],
              [[c["file"], c["duration_seconds"], c.get("reference_words"), c.get("substitutions"), c.get("deletions"),
                c.get("insertions"), c.get("wer"), c["real_time_factor"]] for c in clips]),
        "",
        f"### Worst {min(WORST_SHOWN, len(scored))} clips",
        "",
        table(["clip", "WER", "reference", "hypothesis"],
              [[Path(c["file"]).name, c["wer"], c["reference"], c["hypothesis"]] for c in scored[:WORST_SHOWN]]),
        "",
        *[f"![WER per clip]({path})" for path in result["plots"]],
    ]
    return "\n".join(lines) + "\n"
