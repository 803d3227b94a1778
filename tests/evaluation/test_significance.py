"""Paired tests against SciPy's reference functions, Holm by hand, Cohen's d_z by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from semrec.evaluation.significance import (
    cohens_d_paired,
    compare_per_user,
    holm,
    paired_test,
    significance_mark,
)


def test_paired_test_matches_scipy():
    rng = np.random.default_rng(0)
    a = rng.random(60)
    b = a + rng.normal(0.05, 0.1, 60)
    got = paired_test(a, b, "recall@10", ("base", "new"))
    t_ref = stats.ttest_rel(b, a)
    w_ref = stats.wilcoxon(b, a)
    assert got.t_statistic == pytest.approx(t_ref.statistic)
    assert got.t_pvalue == pytest.approx(t_ref.pvalue)
    assert got.wilcoxon_statistic == pytest.approx(w_ref.statistic)
    assert got.wilcoxon_pvalue == pytest.approx(w_ref.pvalue)
    d = b - a
    assert got.cohens_d == pytest.approx(d.mean() / d.std(ddof=1))
    assert got.mean_difference == pytest.approx(d.mean())
    assert (got.baseline, got.run, got.n_users) == ("base", "new", 60)


def test_ties_and_zero_differences_match_scipy():
    # binary per-user values (hit rate): many zero differences and ties
    a = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 1], dtype=float)
    b = np.array([1, 1, 1, 1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 1], dtype=float)
    got = paired_test(a, b)
    w_ref = stats.wilcoxon(b, a, zero_method="wilcox")
    assert got.wilcoxon_pvalue == pytest.approx(w_ref.pvalue)
    assert got.t_pvalue == pytest.approx(stats.ttest_rel(b, a).pvalue)


def test_identical_runs_are_not_significant():
    a = np.array([0.1, 0.5, 0.3])
    got = paired_test(a, a.copy())
    assert (got.t_pvalue, got.wilcoxon_pvalue, got.cohens_d) == (1.0, 1.0, 0.0)


def test_cohens_d_by_hand():
    # differences [1, 2, 3]: mean 2, sd 1 -> d_z = 2
    assert cohens_d_paired(np.zeros(3), np.array([1.0, 2.0, 3.0])) == pytest.approx(2.0)
    assert cohens_d_paired(np.zeros(3), np.ones(3)) == math.inf


def test_holm_by_hand():
    # sorted 0.01, 0.02, 0.04 -> 3*0.01, max(0.03, 2*0.02), max(0.04, 1*0.04)
    assert holm([0.04, 0.01, 0.02]).tolist() == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.5, 0.6]).tolist() == pytest.approx([1.0, 1.0])
    assert holm([0.03]).tolist() == pytest.approx([0.03])
    got = holm([np.nan, 0.01])
    assert math.isnan(got[0]) and got[1] == pytest.approx(0.01)


def test_compare_adjusts_over_runs_and_marks():
    rng = np.random.default_rng(3)
    base = rng.random(80)
    runs = {
        "base": {"recall@10": base},
        "better": {"recall@10": base + 0.2 + rng.normal(0, 0.05, 80)},
        "same": {"recall@10": base + rng.normal(0, 0.05, 80)},
    }
    tests = compare_per_user(runs, ["recall@10"])
    assert [t.run for t in tests] == ["better", "same"]
    raw = [t.t_pvalue for t in tests]
    assert [t.t_pvalue_holm for t in tests] == pytest.approx(holm(raw).tolist())
    assert significance_mark(tests[0]) == "*"
    assert tests[1].t_pvalue_holm >= tests[1].t_pvalue


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="one length"):
        paired_test(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        paired_test(np.array([0.0, np.nan]), np.zeros(2))
    with pytest.raises(ValueError, match="at least two"):
        compare_per_user({"a": {"m": np.zeros(2)}}, ["m"])
