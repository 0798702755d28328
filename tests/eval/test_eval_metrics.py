"""Metric code on hand-made cases whose results are worked out by hand in the comments."""

import math

import numpy as np
import pytest

from eval import metrics


def test_wer_of_identical_strings_is_zero():
    errors = metrics.word_errors(["Ask not what your country can do"], ["ask not, what your country can do!"])

    assert errors.wer == 0.0
    assert errors.hits == 7


def test_wer_counts_substitution_deletion_insertion():
    # 7 reference words; b->x is substituted, e deleted, h inserted. Any other alignment costs 4 or more edits.
    errors = metrics.word_errors(["a b c d e f g"], ["a x c d f g h"])

    assert (errors.substitutions, errors.deletions, errors.insertions) == (1, 1, 1)
    assert errors.wer == pytest.approx(3 / 7)


def test_wer_is_corpus_level_not_mean_of_clips():
    # Clip 1: 1 error in 1 word (WER 1.0); clip 2: 0 errors in 9 words. Mean of clips would be 0.5.
    errors = metrics.word_errors(["hello", "one two three four five six seven eight nine"],
                                 ["goodbye", "one two three four five six seven eight nine"])

    assert errors.wer == pytest.approx(1 / 10)


def test_wer_of_empty_hypothesis_deletes_every_word():
    assert metrics.word_errors(["three short words"], [""]).wer == 1.0


def test_wer_rejects_empty_reference():
    with pytest.raises(ValueError, match="empty after normalisation"):
        metrics.word_errors(["?!"], ["anything"])


def test_transcript_normalisation():
    assert metrics.normalise_transcript("Don’t  STOP—now, Mr. Smith's well-known _x_") == "don't stop now mr smith's well known x"


def test_mase_of_perfect_forecast_is_zero():
    history = np.array([1.0, 5.0, 2.0, 6.0, 3.0, 7.0])
    actual = np.array([4.0, 8.0])

    assert metrics.mase(actual, actual.copy(), metrics.seasonal_scale(history, 2)) == 0.0


def test_mase_of_seasonal_naive_is_one():
    # Each season adds 1 to every point, so the in-sample seasonal difference and the naive error are both 1.
    season = np.array([10.0, 20.0, 15.0, 30.0])
    series = np.concatenate([season + level for level in range(4)])
    history, actual = series[:12], series[12:]
    naive = metrics.seasonal_naive_forecast(history, horizon=4, season_length=4)

    assert naive.tolist() == (season + 2).tolist()
    assert metrics.mase(actual, naive, metrics.seasonal_scale(history, 4)) == pytest.approx(1.0)


def test_mase_is_undefined_for_flat_history():
    assert math.isnan(metrics.mase(np.array([1.0]), np.array([2.0]), metrics.seasonal_scale(np.zeros(10), 2)))


def test_mase_skips_missing_actuals():
    assert metrics.mase(np.array([1.0, np.nan, 3.0]), np.array([2.0, 100.0, 3.0]), 2.0) == pytest.approx(0.25)


def test_wql_of_known_quantiles():
    actual = np.array([10.0, 20.0])
    quantiles = {0.1: np.array([8.0, 22.0]), 0.9: np.array([12.0, 18.0])}
    # q=0.1: errors 2 and -2 -> 0.1*2 + 0.9*2 = 2.0; q=0.9: errors -2 and 2 -> 0.1*2 + 0.9*2 = 2.0.
    # WQL = mean over levels of 2 * loss / sum|y| = 2 * 2.0 / 30.

    assert metrics.wql(actual, quantiles) == pytest.approx(4.0 / 30.0)


def test_wql_of_exact_quantiles_is_zero():
    actual = np.array([1.0, 2.0, 3.0])

    assert metrics.wql(actual, {0.5: actual, 0.9: actual}) == 0.0


def test_geometric_mean():
    assert metrics.geometric_mean([1.0, 4.0]) == pytest.approx(2.0)
    assert metrics.geometric_mean([0.5, 2.0, 1.0]) == pytest.approx(1.0)
    assert metrics.geometric_mean([0.0, 3.0]) == 0.0
    assert math.isnan(metrics.geometric_mean([]))


def test_geometric_mean_rejects_negative():
    with pytest.raises(ValueError, match="finite values >= 0"):
        metrics.geometric_mean([1.0, -1.0])


def test_mrr_of_known_ranking():
    ranks = [
        metrics.first_relevant_rank(["a.md", "b.md", "c.md"], "a.md"),
        metrics.first_relevant_rank(["b.md", "b.md", "a.md"], "a.md"),
        metrics.first_relevant_rank(["b.md", "c.md", "d.md"], "a.md"),
        metrics.first_relevant_rank(["b.md", "c.md", "d.md", "a.md"], "a.md"),
    ]

    assert ranks == [1, 2, None, 4]
    assert metrics.mean_reciprocal_rank(ranks) == pytest.approx((1 + 0.5 + 0 + 0.25) / 4)
    assert [metrics.hit_at(rank, 3) for rank in ranks] == [True, True, False, False]


def test_answer_hit_normalisation():
    assert metrics.answer_hit("kubectl -n <ns> edit pvc", "Run `kubectl -n <ns> edit PVC <my-pvc>`.")
    assert metrics.answer_hit("110 Pods per Kubelet", "- **110 pods per kubelet** by default")
    assert not metrics.answer_hit("15 minutes", "more than 5 minutes")
    assert not metrics.answer_hit("", "anything")


def test_percentile():
    assert metrics.percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert metrics.percentile([0.0, 10.0], 95) == pytest.approx(9.5)
