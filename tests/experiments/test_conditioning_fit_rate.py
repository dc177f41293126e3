"""conditioning's rate fit against a synthetic decay with a known rate: a double root ``(a + b k) rho^k``
is recovered by the fit with the ``p log k`` term and biased low by the plain exponential fit."""

import numpy as np
import pytest

from descent.experiments.conditioning import fit_rate


def test_fit_rate_recovers_a_double_root():
    k = np.arange(0, 400, dtype=float)
    rho = 0.95
    error = (3.0 + 2.0 * k) * rho**k
    fitted, p = fit_rate(k[100:], error[100:])
    assert fitted == pytest.approx(rho, rel=1e-4)
    assert p == pytest.approx(1.0, abs=0.05)
    plain, _ = fit_rate(k[100:], error[100:], double_root=False)
    assert 1 - plain < (1 - rho) * 0.95  # the plain fit underestimates 1 - rho


def test_fit_rate_recovers_a_single_root_exactly():
    k = np.arange(0, 200, dtype=float)
    error = 0.7 * 0.9**k
    fitted, p = fit_rate(k, error)
    assert fitted == pytest.approx(0.9, rel=1e-12)
    assert p == pytest.approx(0.0, abs=1e-9)
    assert fit_rate(k, error, double_root=False)[0] == pytest.approx(0.9, rel=1e-12)
