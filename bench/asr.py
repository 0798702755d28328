"""Benchmark speech-to-text: real-time factor per corpus clip, served and in-process, and the service's memory.

Real-time factor (RTF) = processing time / audio duration; below 1 is faster than real time. The served
path posts each file to a `bentoml serve bentos.asr.service:SpeechToText` on a free loopback port (upload,
decode and transcription); the in-process path decodes and transcribes with the same Transcriber. Peak
resident memory is the largest sum of RSS over the service's process tree, sampled every 0.2 s.

Usage: OPSSEER_CORPUS_DIR=/path/to/corpus python bench/asr.py [--repeats N]
"""

import argparse
import json
import os
import platform
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
from rich.progress import track

from bentos.asr.audio import decode
from bentos.asr.settings import AsrSettings
from bentos.asr.transcriber import Transcriber
from opsseer.bento import served

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CLIPS = [
    "audio/coqui-tts-ljspeech/tests/data/ljspeech/wavs/LJ001-0002.wav",
    "audio/faster-whisper/tests/data/stereo_diarization.wav",
    "audio/coqui-tts-ljspeech/tests/data/ljspeech/wavs/LJ001-0001.wav",
    "audio/openai-whisper/tests/jfk.flac",
    "audio/onnxruntime-extensions/test/data/1272-141231-0002.wav",
    "audio/onnxruntime-extensions/test/data/models/phi-4/1272-128104-0004-8k.wav",
]


class PeakMemory(threading.Thread):
    """Sample the summed RSS of process trees until stopped, keeping the peak."""

    def __init__(self, root_pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.roots = [psutil.Process(pid) for pid in root_pids]
        self.peak = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            total = 0
            for root in self.roots:
                try:
                    total += sum(process.memory_info().rss for process in [root, *root.children(recursive=True)])
                except psutil.NoSuchProcess:
                    continue
            self.peak = max(self.peak, total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="Timed runs per clip and path; the median is reported.")
    args = parser.parse_args()
    corpus = Path(os.environ["OPSSEER_CORPUS_DIR"])

    transcriber = Transcriber(AsrSettings())
    rows = []
    for clip in track(CLIPS, description="in-process"):
        decoded = decode(corpus / clip, max_seconds=3600)
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            transcriber.transcribe(decode(corpus / clip, max_seconds=3600).samples)
            times.append(time.perf_counter() - started)
        rows.append({"clip": clip, "duration_seconds": round(decoded.duration_seconds, 2), "in_process_seconds": sorted(times)[len(times) // 2]})

    with tempfile.TemporaryDirectory() as logs, served("bentos.asr.service:SpeechToText", Path(logs)) as url:
        pids = [process.pid for process in psutil.process_iter() if "bentos.asr.service:SpeechToText" in " ".join(process.cmdline() or [])]
        monitor = PeakMemory(pids)
        monitor.start()
        time.sleep(0.5)
        idle_rss = monitor.peak
        for row in track(rows, description="served"):
            data = (corpus / row["clip"]).read_bytes()
            times = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                response = httpx.post(f"{url}/transcribe", files={"audio": (Path(row["clip"]).name, data, "audio/wav")}, timeout=300)
                times.append(time.perf_counter() - started)
                response.raise_for_status()
            row["served_seconds"] = sorted(times)[len(times) // 2]
            row["text"] = response.json()["text"]
        monitor.stopped.set()
        monitor.join()

    for row in rows:
        row["rtf_in_process"] = round(row["in_process_seconds"] / row["duration_seconds"], 4)
        row["rtf_served"] = round(row["served_seconds"] / row["duration_seconds"], 4)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "model": transcriber.name,
        "device": f"{transcriber.device} / {transcriber.compute_type}",
        "repeats": args.repeats,
        "service_rss_idle_mb": round(idle_rss / 2**20, 1),
        "service_rss_peak_mb": round(monitor.peak / 2**20, 1),
        "clips": rows,
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "asr.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Speech-to-text benchmark",
        "",
        f"{result['date']}, {result['machine']}, model {result['model']} on {result['device']}, "
        f"median of {args.repeats} runs per clip. Produced by `python bench/asr.py`. The 2 cores were shared "
        "with other work, so the numbers are upper bounds.",
        "",
        "Real-time factor (RTF) = processing time / audio duration. Served = HTTP upload to SpeechToText "
        "(decode and transcription in the service); in-process = decode and transcription in the benchmark process.",
        "",
        "| clip | audio s | in-process s | RTF in-process | served s | RTF served |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {Path(row['clip']).name} | {row['duration_seconds']} | {row['in_process_seconds']:.2f} | {row['rtf_in_process']} "
            f"| {row['served_seconds']:.2f} | {row['rtf_served']} |"
        )
    lines += ["", f"Service process tree resident memory: {result['service_rss_idle_mb']} MiB after start-up, "
              f"{result['service_rss_peak_mb']} MiB peak during the run.", ""]
    (RESULTS_DIR / "asr.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
