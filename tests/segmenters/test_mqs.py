"""MQS on serial data: change points of piecewise-constant quantiles, and the null."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from ssmoe.segmenters import MQSSegmenter, mqs
from ssmoe.segmenters.multiscale import IntervalSystem
from ssmoe.segmenters.segmentation import Constraints, constrained_segmentation, rank_cost

Noise = Callable[[np.random.Generator, int], np.ndarray]

# (name, noise, beta, change points, levels, n); the noise is shifted so that its beta-quantile
# jumps by the level differences.
SHAPES: list[tuple[str, Noise, float, list[int], list[float], int]] = [
    ("cauchy-median", lambda r, m: r.standard_cauchy(m), 0.5, [150, 400], [0, 4, -2], 600),
    (
        "lognormal-q25",
        lambda r, m: r.lognormal(0, 1, m),
        0.25,
        [250, 500, 650],
        [0, 2, 0.5, 3],
        900,
    ),
    ("pareto-q75", lambda r, m: r.pareto(1.5, m), 0.75, [300], [0, 3], 600),
    (
        "normal-alternating",
        lambda r, m: r.normal(size=m),
        0.5,
        [100, 200, 300, 400],
        [0, 2, 0, 2, 0],
        500,
    ),
]
TOLERANCE = 10  # samples, i.e. <= 2% of n for every shape above


def _sequence(
    rng: np.random.Generator, noise: Noise, cps: list[int], levels: list[float], n: int
) -> np.ndarray:
    bounds = [0, *cps, n]
    return np.concatenate(
        [lv + noise(rng, bounds[i + 1] - bounds[i]) for i, lv in enumerate(levels)]
    )


@pytest.mark.parametrize("shape", SHAPES, ids=[s[0] for s in SHAPES])
def test_mqs_recovers_change_points(shape: tuple) -> None:
    _, noise, beta, cps, levels, n = shape
    for seed in range(5):
        y = _sequence(np.random.default_rng(seed), noise, cps, levels, n)
        seg = mqs(y, beta=beta)
        assert seg.n_segments == len(cps) + 1, (seed, seg.change_points)
        assert np.abs(seg.change_points - np.array(cps)).max() <= TOLERANCE, seg.change_points
        # segment values are in the feasible range and near the true beta-quantile jumps
        assert np.all(seg.values >= seg.lower) and np.all(seg.values < seg.upper)


def test_mqs_segment_values_are_beta_quantiles() -> None:
    rng = np.random.default_rng(4)
    y = _sequence(rng, lambda r, m: r.standard_cauchy(m), [300], [0.0, 5.0], 600)
    seg = mqs(y, beta=0.5)
    np.testing.assert_allclose(seg.values, [0.0, 5.0], atol=0.35)


@pytest.mark.parametrize(
    "noise",
    [
        lambda r, m: r.standard_cauchy(m),
        lambda r, m: r.exponential(size=m),
        lambda r, m: r.pareto(1.0, m),
    ],
    ids=["cauchy", "exponential", "pareto"],
)
@pytest.mark.parametrize("beta", [0.5, 0.2])
def test_mqs_finds_one_segment_without_change(noise: Noise, beta: float) -> None:
    """P(one segment) >= P(T(theta*) <= q) = 1 - alpha = 0.95; we ask >= 90% of 40 seeds."""
    ones = [
        mqs(noise(np.random.default_rng(100 + s), 200), beta=beta).n_segments == 1
        for s in range(40)
    ]
    assert np.mean(ones) >= 0.9


def test_more_segments_than_minimal_are_feasible_and_fewer_are_not() -> None:
    rng = np.random.default_rng(0)
    y = _sequence(rng, lambda r, m: r.normal(size=m), [200], [0, 3], 400)
    cons = Constraints(y, 0.5, IntervalSystem(400))
    q = 1.0
    seg = constrained_segmentation(cons, q, rank_cost(y), n_segments=4)
    assert seg.n_segments == 4 and seg.min_segments == 2
    assert all(
        cons.at(q).feasible(np.array([a]), np.array([b]))[0]
        for a, b in zip(seg.boundaries[:-1], seg.boundaries[1:], strict=True)
    )
    with pytest.raises(ValueError, match="impossible"):
        constrained_segmentation(cons, q, rank_cost(y), n_segments=1)


def test_mqs_segmenter_reports_levels_and_completes_to_k(scores: np.ndarray) -> None:
    """The fixture has lognormal modes at -3, 0 and a small one at 3 (log units); with 3000
    scores MQS supports two of them at alpha = 0.05. K=2 cuts in the valley between -3 and 0;
    K=3, 5 keep that cut and add equal-count splits."""
    for k in (2, 3, 5):
        seg = MQSSegmenter(k).fit(scores)
        d = seg.describe()
        assert d["n_levels_at_alpha"] >= d["n_modes_at_alpha"] == 2
        assert d["subsample_size"] == len(scores) and 0.0 <= d["alpha_used"] <= 1.0
        assert d["q_used"] == d["q_alpha"] and d["alpha_used"] == 0.05
        assert 0.03 <= d["alpha_mc"] <= 0.05
        assert d["extra_splits"] == max(0, k - d["n_modes_at_alpha"])
        logs = np.log(seg.thresholds_)
        assert np.any((logs > -2.2) & (logs < -0.8)), (k, logs)  # the valley cut is kept


def test_mqs_segmenter_cuts_in_the_gap_between_two_populations() -> None:
    rng = np.random.default_rng(1)
    scores = np.exp(np.concatenate([rng.normal(-4, 0.3, 2000), rng.normal(2, 0.3, 1000)]))
    seg = MQSSegmenter(2).fit(scores)
    assert -2.5 < np.log(seg.thresholds_[0]) < 0.5
    assert seg.counts_.tolist() == [2000, 1000]
    assert seg.describe()["n_modes_at_alpha"] == 2


def test_mqs_segmenter_splits_classes_without_enough_modes() -> None:
    scores = np.exp(np.random.default_rng(2).normal(size=60))
    seg = MQSSegmenter(8).fit(scores)
    assert seg.describe()["extra_splits"] == 8 - seg.describe()["n_modes_at_alpha"]
    assert (seg.counts_ > 0).all() and len(seg.counts_) == 8


def test_mqs_segmenter_subsamples_deterministically() -> None:
    rng = np.random.default_rng(3)
    scores = np.exp(rng.normal(size=3000) + rng.choice([0.0, 3.0], 3000))
    a = MQSSegmenter(3, seed=5, max_n=1000).fit(scores)
    b = MQSSegmenter(3, seed=5, max_n=1000).fit(scores)
    np.testing.assert_array_equal(a.thresholds_, b.thresholds_)
    assert a.describe()["subsample_size"] == 1000
