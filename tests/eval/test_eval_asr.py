"""Speech-to-text suite on a few corpus clips, against the served SpeechToText service."""

from eval import asr, metrics
from eval.suites import EvalContext


def test_suite_reports_corpus_wer_and_rtf(corpus_dir, tmp_path):
    context = EvalContext(corpus_root=corpus_dir, out_dir=tmp_path, work_dir=tmp_path, limit=3, quick=True,
                          show_progress=False)

    result = asr.run(context)

    clips = result.details["clips"]
    assert len(clips) == 3
    total = metrics.word_errors([clip["reference"] for clip in clips], [clip["hypothesis"] for clip in clips])
    assert result.summary["wer"] == total.wer
    assert result.summary["reference_words"] == sum(clip["reference_words"] for clip in clips)
    assert result.summary["real_time_factor"] > 0
    # The JFK clip is clean enough that any working Whisper model gets most words right.
    jfk = next(clip for clip in clips if clip["file"].endswith("jfk.flac"))
    assert jfk["wer"] < 0.5, jfk
    assert result.models["speech_to_text"]
    assert "### Worst" in asr.render(result.to_dict())


def test_per_channel_reference_is_not_scored():
    scored, unscored = asr.split_clips([
        {"file": "a.wav", "reference_transcript": "hello"},
        {"file": "b.wav", "reference_transcript": {"left": "x", "right": "y"}},
    ])

    assert [clip["file"] for clip in scored] == ["a.wav"]
    assert [clip["file"] for clip in unscored] == ["b.wav"]
