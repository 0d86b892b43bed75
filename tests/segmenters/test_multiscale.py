"""The multiscale statistic, its local bounds and the Monte-Carlo critical value."""

from __future__ import annotations

import numpy as np
import pytest

from ssmoe.segmenters.multiscale import (
    IntervalSystem,
    critical_value,
    default_cache_dir,
    kl_bounds,
    kl_divergence,
    local_levels,
    multiscale_statistic,
    null_distribution,
    tail_probability,
)


@pytest.mark.parametrize("beta", [0.1, 0.25, 0.5, 0.8])
def test_kl_bounds_solve_their_equation(beta: float) -> None:
    a = np.geomspace(1e-4, 0.9 * min(np.log(1 / beta), np.log(1 / (1 - beta))), 50)
    x_lo, x_hi = kl_bounds(beta, a)
    assert np.all((x_lo > 0) & (x_lo < beta) & (x_hi > beta) & (x_hi < 1))
    np.testing.assert_allclose(kl_divergence(beta, x_lo), a, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(kl_divergence(beta, x_hi), a, rtol=1e-9, atol=1e-12)


def test_kl_bounds_void_when_level_is_large() -> None:
    x_lo, x_hi = kl_bounds(0.3, np.array([10.0]))
    assert x_lo[0] == 0.0 and x_hi[0] == 1.0
    # only the lower side becomes void: f(0.3, 0) = log(1/0.7) = 0.357 < f(0.3, 1) = 1.204
    x_lo, x_hi = kl_bounds(0.3, np.array([0.5]))
    assert x_lo[0] == 0.0 and 0.3 < x_hi[0] < 1.0
    assert kl_divergence(0.3, x_hi[0]) == pytest.approx(0.5)


def test_local_levels_are_the_constraint_of_the_statistic() -> None:
    """T_I <= q  <=>  x_lo(l) <= p_I <= x_hi(l) with f(beta, x) = a_l."""
    n, q, beta = 1000, 0.7, 0.5
    lengths = np.array([16, 64, 256])
    x_lo, x_hi = kl_bounds(beta, local_levels(q, n, lengths))
    pen = np.sqrt(2 + 2 * np.log(n / lengths))
    for x in (x_lo, x_hi):
        np.testing.assert_allclose(np.sqrt(2 * lengths * kl_divergence(beta, x)) - pen, q)


def test_interval_system_is_dyadic_and_sparse() -> None:
    system = IntervalSystem(1000, density=8)
    assert system.lengths.tolist() == [2**j for j in range(10)]
    assert system.step(512) == 64 and system.step(4) == 1
    assert system.starts(512).tolist() == [0, 64, 128, 192, 256, 320, 384, 448]
    assert system.size < 12 * 1000


def test_statistic_of_perfect_fit_is_low_and_of_shift_high() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=400)
    system = IntervalSystem(400)
    assert multiscale_statistic(y, 0.0, 0.5, system) < 2.0
    assert multiscale_statistic(y, 1.5, 0.5, system) > 10.0


def test_critical_value_is_calibrated_at_the_true_quantile() -> None:
    """P(T(theta*) > q_alpha) ~ alpha for iid data whatever the distribution (Cauchy here)."""
    n, beta, alpha = 200, 0.3, 0.1
    null = null_distribution(n, beta, nsim=1000, seed=1)
    q = critical_value(null, alpha)
    assert tail_probability(null, q) <= alpha
    theta = np.tan(np.pi * (beta - 0.5))  # Cauchy beta-quantile
    rng = np.random.default_rng(2)
    system = IntervalSystem(n)
    exceed = np.mean(
        [multiscale_statistic(rng.standard_cauchy(n), theta, beta, system) > q for _ in range(300)]
    )
    assert 0.03 <= exceed <= 0.17


def test_null_distribution_is_seeded_and_cached_on_disk() -> None:
    a = null_distribution(150, 0.5, nsim=200, seed=3)
    files = list(default_cache_dir().glob("null_*_n150_*"))
    assert len(files) == 1
    np.testing.assert_array_equal(np.load(files[0]), a)
    np.testing.assert_array_equal(null_distribution(150, 0.5, nsim=200, seed=3), a)
    assert np.all(np.diff(a) >= 0)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.2])
def test_bad_beta_and_alpha_are_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match="beta"):
        kl_bounds(bad, 0.1)
    with pytest.raises(ValueError, match="alpha"):
        critical_value(np.arange(100.0), bad)
