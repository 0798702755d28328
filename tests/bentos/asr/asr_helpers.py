"""Corpus clips and PyAV encoding for the speech-to-text tests."""

import io
from pathlib import Path

import av
import numpy as np
from faster_whisper import decode_audio

JFK = "audio/openai-whisper/tests/jfk.flac"
LJ_0001 = "audio/coqui-tts-ljspeech/tests/data/ljspeech/wavs/LJ001-0001.wav"
LJ_0002 = "audio/coqui-tts-ljspeech/tests/data/ljspeech/wavs/LJ001-0002.wav"
STEREO = "audio/faster-whisper/tests/data/stereo_diarization.wav"

# Phrases of each clip's reference transcript that Whisper tiny.en reproduces (compared lower-case, without commas).
KEYWORDS = {
    JFK: ["ask not what your country can do for you", "ask what you can do for your country"],
    LJ_0001: ["printing", "differs from most if not from all the arts and crafts"],
    LJ_0002: ["comparatively modern"],
    # The two speakers are mixed down to mono; the left channel's sentence is the louder one.
    STEREO: ["behind the curtain on the left"],
}

CODECS = {"mp3": "libmp3lame", "wav": "pcm_s16le", "flac": "flac"}


def normalized(text: str) -> str:
    return " ".join(text.lower().replace(",", " ").replace(".", " ").split())


def encode(path: Path, *, format: str, rate: int, channels: int) -> bytes:
    """Re-encode an audio file with PyAV to another container, sample rate and channel count."""
    samples = decode_audio(str(path), sampling_rate=rate)
    data = (np.clip(samples, -1, 1) * 32767).astype(np.int16)[None, :].repeat(channels, axis=0)
    layout = "mono" if channels == 1 else "stereo"
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=format) as output:
        stream = output.add_stream(CODECS[format], rate=rate, layout=layout)
        frame = av.AudioFrame.from_ndarray(data, format="s16p", layout=layout)
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return buffer.getvalue()
