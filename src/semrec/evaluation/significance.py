r"""Paired significance tests over per-user metric values of runs on the same split.

Two runs evaluated on the same split score the same users, so each user gives a pair
:math:`(a_u, b_u)` and the tests work on the differences :math:`d_u = b_u - a_u`:

- paired t-test (``scipy.stats.ttest_rel``), two-sided;
- Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, ``zero_method="wilcox"``: users with
  :math:`d_u = 0` are dropped, SciPy's default; exact distribution for small samples without
  ties, normal approximation otherwise), two-sided. When every difference is 0 the runs are
  indistinguishable on that metric and we report statistic 0 and p = 1 (SciPy refuses);
- effect size: Cohen's :math:`d` for paired samples, :math:`d_z = \bar d / s_d` with
  :math:`s_d` the sample standard deviation (ddof 1) of the differences (0 when every
  difference is 0; infinite when the differences are a non-zero constant);
- multiple comparisons: comparing :math:`r > 2` runs, each run is tested against the first
  (the baseline), :math:`r - 1` tests per metric and per test kind, and those :math:`r - 1`
  p-values are adjusted with Holm's step-down method (Holm 1979), which controls the
  family-wise error rate without assuming independence. With two runs there is one test
  and the adjusted p-value equals the raw one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class PairedTest:
    """One metric, one run against the baseline run, over the same users."""

    metric: str
    baseline: str
    run: str
    n_users: int
    mean_baseline: float
    mean_run: float
    mean_difference: float  # run - baseline
    t_statistic: float
    t_pvalue: float
    wilcoxon_statistic: float
    wilcoxon_pvalue: float
    cohens_d: float
    t_pvalue_holm: float = math.nan
    wilcoxon_pvalue_holm: float = math.nan

    def to_dict(self) -> dict:
        return asdict(self)


def cohens_d_paired(baseline: np.ndarray, run: np.ndarray) -> float:
    """:math:`d_z = \\bar d / s_d` of the paired differences ``run - baseline``."""
    differences = np.asarray(run, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    if len(differences) < 2:
        return math.nan
    mean = float(differences.mean())
    spread = float(differences.std(ddof=1))
    if spread == 0.0:
        return 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    return mean / spread


def paired_test(
    baseline: np.ndarray, run: np.ndarray, metric: str = "", names: tuple[str, str] = ("a", "b")
) -> PairedTest:
    """Paired t-test, Wilcoxon signed-rank test and Cohen's d_z of ``run`` vs ``baseline``.

    Raises:
        ValueError: arrays of different shapes, not 1-D, or containing NaN.
    """
    a = np.asarray(baseline, dtype=np.float64)
    b = np.asarray(run, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"paired values must be 1-D of one length, got {a.shape} and {b.shape}")
    if np.isnan(a).any() or np.isnan(b).any():
        raise ValueError(f"{metric}: per-user values contain NaN")
    differences = b - a
    if len(a) < 2:
        t_statistic = t_pvalue = w_statistic = w_pvalue = math.nan
    elif not differences.any():
        t_statistic, t_pvalue, w_statistic, w_pvalue = 0.0, 1.0, 0.0, 1.0
    else:
        t_result = stats.ttest_rel(b, a)
        t_statistic, t_pvalue = float(t_result.statistic), float(t_result.pvalue)
        if np.ptp(differences) == 0.0:  # constant non-zero difference: t is infinite
            t_statistic = math.copysign(math.inf, float(differences[0]))
            t_pvalue = 0.0
        w_result = stats.wilcoxon(b, a, zero_method="wilcox")
        w_statistic, w_pvalue = float(w_result.statistic), float(w_result.pvalue)
    return PairedTest(
        metric=metric,
        baseline=names[0],
        run=names[1],
        n_users=len(a),
        mean_baseline=float(a.mean()) if len(a) else math.nan,
        mean_run=float(b.mean()) if len(b) else math.nan,
        mean_difference=float(differences.mean()) if len(a) else math.nan,
        t_statistic=t_statistic,
        t_pvalue=t_pvalue,
        wilcoxon_statistic=w_statistic,
        wilcoxon_pvalue=w_pvalue,
        cohens_d=cohens_d_paired(a, b),
    )


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values, in the input order (NaN stays NaN, not counted).

    Sorted ascending :math:`p_{(1)} \\le \\dots \\le p_{(m)}`:
    :math:`\\tilde p_{(j)} = \\min(1, \\max_{i \\le j} (m - i + 1) p_{(i)})`."""
    p = np.asarray(pvalues, dtype=np.float64)
    adjusted = np.full_like(p, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = len(valid)
    if m == 0:
        return adjusted
    order = valid[np.argsort(p[valid], kind="stable")]
    scaled = (m - np.arange(m)) * p[order]
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return adjusted


def compare_per_user(
    runs: Mapping[str, Mapping[str, np.ndarray]], metrics: Sequence[str]
) -> list[PairedTest]:
    """Test every run against the first one, for each metric, Holm-adjusted per metric and
    test kind over the ``len(runs) - 1`` comparisons.

    Args:
        runs: ``{run name: {metric: per-user values}}``, first = baseline; every run's
            values must be over the same users in the same order.
        metrics: the metrics to test (present in every run).
    """
    names = list(runs)
    if len(names) < 2:
        raise ValueError("compare at least two runs")
    baseline = names[0]
    results: list[PairedTest] = []
    for metric in metrics:
        tests = [
            paired_test(runs[baseline][metric], runs[name][metric], metric, (baseline, name))
            for name in names[1:]
        ]
        t_holm = holm([t.t_pvalue for t in tests])
        w_holm = holm([t.wilcoxon_pvalue for t in tests])
        for test, t_adjusted, w_adjusted in zip(tests, t_holm, w_holm, strict=True):
            results.append(
                PairedTest(
                    **{
                        **test.to_dict(),
                        "t_pvalue_holm": float(t_adjusted),
                        "wilcoxon_pvalue_holm": float(w_adjusted),
                    }
                )
            )
    return results


def significance_mark(test: PairedTest, alpha: float = 0.05) -> str:
    """``*`` when both Holm-adjusted tests reject at ``alpha``, ``†`` when only one does."""
    rejected = [p < alpha for p in (test.t_pvalue_holm, test.wilcoxon_pvalue_holm)]
    return "*" if all(rejected) else "†" if any(rejected) else ""
