"""Every segmenter: K classes, sorted thresholds, determinism, clear errors; the registry."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ssmoe.segmenters import SEGMENTERS, Segmenter, get_segmenter


@pytest.mark.parametrize("name", SEGMENTERS)
@pytest.mark.parametrize("k", [2, 4])
def test_k_classes_sorted_thresholds_deterministic(name: str, k: int, scores: np.ndarray) -> None:
    seg = get_segmenter(name, k, seed=3)
    labels = seg.fit_predict(scores)
    assert seg.thresholds_.shape == (k - 1,)
    assert np.all(np.diff(seg.thresholds_) > 0)
    assert labels.dtype == np.int64 and set(np.unique(labels)) == set(range(k))
    assert seg.counts_.sum() == len(scores)
    np.testing.assert_array_equal(np.bincount(labels, minlength=k), seg.counts_)
    again = get_segmenter(name, k, seed=3).fit(scores)
    np.testing.assert_array_equal(again.thresholds_, seg.thresholds_)
    # label 0 = lowest error: labels are monotone in the score
    order = np.argsort(scores)
    assert np.all(np.diff(labels[order]) >= 0)


@pytest.mark.parametrize("name", SEGMENTERS)
def test_describe_is_json_and_complete(name: str, scores: np.ndarray) -> None:
    d = get_segmenter(name, 3).fit(scores).describe()
    assert json.loads(json.dumps(d)) == d
    assert d["method"] == name and d["k"] == 3 and len(d["thresholds"]) == 2
    assert sum(d["counts"]) == len(scores) and isinstance(d["options"], dict)
    if name == "mqs":
        for key in (
            "n_levels_at_alpha",
            "n_modes_at_alpha",
            "q_used",
            "alpha_used",
            "subsample_size",
            "q_alpha",
        ):
            assert key in d


def test_predict_uses_searchsorted_right() -> None:
    seg = get_segmenter("quantile", 4).fit(np.arange(1.0, 101.0))
    t = seg.thresholds_
    np.testing.assert_array_equal(seg.predict(t), [1, 2, 3])
    np.testing.assert_array_equal(seg.predict(np.array([1e-9, 1e9])), [0, 3])


def test_reference_thresholds() -> None:
    x = np.exp(np.linspace(0.0, 10.0, 1001))
    q = get_segmenter("quantile", 4).fit(x).thresholds_
    np.testing.assert_allclose(np.log(q), [2.5, 5.0, 7.5])
    e = get_segmenter("empirical", 4, lower=0.0, upper=1.0).fit(x).thresholds_
    np.testing.assert_allclose(np.log(e), [2.5, 5.0, 7.5])
    e = get_segmenter("empirical", 2).fit(x).thresholds_  # grid between 1% and 99%
    np.testing.assert_allclose(np.log(e), [5.0])
    two = np.exp(np.r_[np.full(50, 1.0), np.full(50, 3.0)])
    np.testing.assert_allclose(np.log(get_segmenter("kmeans", 2).fit(two).thresholds_), [2.0])


BAD_INPUTS = [
    (np.array([1.0, 2.0]), "at least k=3"),
    (np.array([1.0, np.nan, 2.0, 3.0]), "finite"),
    (np.array([1.0, np.inf, 2.0, 3.0]), "finite"),
    (np.array([1.0, 0.0, 2.0, 3.0]), "positive"),
    (np.array([1.0, -2.0, 2.0, 3.0]), "positive"),
    (np.full(10, 0.5), "equal"),
    (np.ones((5, 2)), "1-D"),
]


@pytest.mark.parametrize("name", SEGMENTERS)
@pytest.mark.parametrize("bad,match", BAD_INPUTS)
def test_unusable_input_is_a_clear_error(name: str, bad: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        get_segmenter(name, 3).fit(bad)


@pytest.mark.parametrize("name", ["mqs", "kmeans", "quantile"])
def test_too_many_ties_for_k_classes(name: str) -> None:
    x = np.r_[np.full(50, 1.0), np.full(50, 2.0)]
    with pytest.raises(ValueError, match="distinct"):
        get_segmenter(name, 5).fit(x)


def test_empirical_grid_may_leave_classes_empty_and_says_so() -> None:
    """A fixed log grid over a gap between two populations has empty middle classes; that is
    the rule, so it is reported in the counts rather than refused."""
    x = np.r_[np.full(50, 1.0), np.full(50, 2.0)]
    d = get_segmenter("empirical", 5).fit(x).describe()
    assert d["counts"] == [50, 0, 0, 0, 50]


@pytest.mark.parametrize(
    "args,match",
    [
        (("nope", 3), "unknown segmenter"),
        (("mqs", 1), "k must be"),
        (("kmeans", 2.5), "k must"),
        (("quantile", True), "k must"),
    ],
)
def test_registry_and_constructor_errors(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        get_segmenter(*args)


def test_unknown_and_bad_options() -> None:
    with pytest.raises(ValueError, match="unknown option"):
        get_segmenter("kmeans", 3, alpha=0.1)
    with pytest.raises(ValueError, match="alpha"):
        get_segmenter("mqs", 3, alpha=1.5)
    with pytest.raises(ValueError, match="lower"):
        get_segmenter("empirical", 3, lower=0.9, upper=0.1)


def test_unfitted_and_bad_predict() -> None:
    seg = get_segmenter("quantile", 3)
    with pytest.raises(RuntimeError, match="fit"):
        seg.predict(np.ones(3))
    seg.fit(np.arange(1.0, 10.0))
    with pytest.raises(ValueError, match="finite"):
        seg.predict(np.array([1.0, np.nan]))
    assert isinstance(seg, Segmenter) and "QuantileSegmenter(k=3" in repr(seg)
