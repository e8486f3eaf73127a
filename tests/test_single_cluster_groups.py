"""A group (or unit set) of fewer than two clusters has no variance: :func:`ratio_mean_variance` must say NaN exactly,
not 0, +inf or NaN by the rounding of S² − 2 m S n + m² n², and :func:`gap_test` / :func:`contrast_test` must leave
its pairs out (as they do for a one-row group without clusters) instead of reading the smallest p-value off them."""

from __future__ import annotations

import numpy as np
import pytest

from biaslib.metrics.intervals import _studentised_gaps, contrast_test, gap_test, ratio_mean_variance

N_PERM = 200

# One cluster's rows; several of these give 0 or +inf on the rounded formula, not NaN.
ONE_CLUSTER_ROWS = [
    [0.7, 0.1, 0.1],
    [0.1, 0.2, 0.5],
    [0.3, 0.3, 0.3],
    [0.25, 0.5],
    [0.3],
    [0.7],
    [1.0, 0.0, 1.0, 1.0],
    [2.5, -1.25, 7.0, 0.125, 3.3],
]


def _totals(rows: list[float]) -> tuple[float, ...]:
    """Totals over one cluster (sum S, size n) of S, n, S², S·n, n² and the count C = 1."""
    s, n = float(np.sum(rows)), float(len(rows))
    return s, n, s * s, s * n, n * n, 1


@pytest.mark.parametrize("rows", ONE_CLUSTER_ROWS)
def test_single_cluster_variance_is_nan(rows: list[float]) -> None:
    mean, variance = ratio_mean_variance(*_totals(rows))
    assert float(mean) == pytest.approx(np.mean(rows))
    assert np.isnan(variance), f"one cluster of rows {rows}: variance {variance}, not NaN"


@pytest.mark.parametrize(("s", "n"), [(0.7, 3.0), (0.3, 3.0), (0.9, 3.0), (0.8, 3.0), (1.1, 7.0), (0.3, 1.0)])
def test_single_cluster_variance_is_nan_from_sums(s: float, n: float) -> None:
    # the colleague's report: sum 0.7 of size 3 gave +inf; the totals are given as a caller passes them
    assert np.isnan(ratio_mean_variance(s, n, s * s, s * n, n * n, 1)[1])


def test_fewer_than_two_units_nan_in_a_batch() -> None:
    # groups side by side (shape (G,)): C = 0, 1, 1, 2, 3; only the last two have a variance
    sums = np.array([0.0, 0.7, 0.9, 1.0, 1.5])
    sizes = np.array([0.0, 3.0, 3.0, 4.0, 5.0])
    squares = np.array([0.0, 0.49, 0.81, 0.52, 0.81])
    cross = np.array([0.0, 2.1, 2.7, 2.0, 2.7])
    size_squares = np.array([0.0, 9.0, 9.0, 8.0, 9.0])
    units = np.array([0.0, 1.0, 1.0, 2.0, 3.0])
    _, variances = ratio_mean_variance(sums, sizes, squares, cross, size_squares, units)
    assert np.isnan(variances[:3]).all(), variances
    assert np.isfinite(variances[3:]).all() and (variances[3:] >= 0).all(), variances


def _brute_force(cluster_values: list[np.ndarray]) -> tuple[float, float]:
    """Textbook ratio estimator m = Σ S / Σ n and Σ (S − m n)² / (Σ n)² · C / (C − 1), in a plain loop."""
    total_s = total_n = 0.0
    for rows in cluster_values:
        total_s += float(sum(rows))
        total_n += float(len(rows))
    m = total_s / total_n
    spread = 0.0
    for rows in cluster_values:
        spread += (float(sum(rows)) - m * len(rows)) ** 2
    c = len(cluster_values)
    return m, spread / total_n**2 * c / (c - 1)


def test_matches_textbook_ratio_variance_and_nan_below_two_clusters() -> None:
    rng = np.random.default_rng(20240611)
    groups = []
    for g in range(60):
        c = 1 + g % 7  # 1 to 7 clusters; every seventh group has one cluster
        sizes = rng.integers(1, 6, size=c)
        groups.append([rng.normal(0.4, 0.3, size=k) for k in sizes])
    sums = np.array([[float(r.sum()) for r in grp] for grp in groups], dtype=object)
    totals = np.array([
        [sum(s for s in sums[i]), sum(len(r) for r in grp), sum(s * s for s in sums[i]),
         sum(s * len(r) for s, r in zip(sums[i], grp)), sum(len(r) ** 2 for r in grp), len(grp)]
        for i, grp in enumerate(groups)], dtype=np.float64)
    means, variances = ratio_mean_variance(*totals.T)
    assert means.shape == variances.shape == (60,)
    for i, grp in enumerate(groups):
        if len(grp) < 2:
            assert np.isnan(variances[i]), f"group {i}, one cluster: {variances[i]}"
            continue
        m, v = _brute_force(grp)
        assert means[i] == pytest.approx(m, rel=1e-12)
        assert variances[i] == pytest.approx(v, rel=1e-8, abs=1e-15), f"group {i} with {len(grp)} clusters"


def test_rows_match_sample_variance() -> None:
    x = np.random.default_rng(3).normal(size=25)
    _, v = ratio_mean_variance(x.sum(), 25, (x * x).sum(), x.sum(), 25, 25)
    assert float(v) == pytest.approx(np.var(x, ddof=1) / 25, rel=1e-10)


# ---- gap_test / contrast_test -------------------------------------------------------------------------------

# Group a: one cluster of rows [0.1, 0.2, 0.5] (mean 0.2667); group b: three clusters of two rows, means ≈ 0.267.
A_ROWS = [0.1, 0.2, 0.5]
B_ROWS = [0.2, 0.334, 0.25, 0.284, 0.3, 0.234]
VALUES = A_ROWS + B_ROWS
GROUPS = ["a"] * 3 + ["b"] * 6
CLUSTERS = ["k1"] * 3 + ["k2", "k2", "k3", "k3", "k4", "k4"]


def test_gap_test_single_cluster_group_is_not_significant() -> None:
    clustered = gap_test(VALUES, GROUPS, clusters=CLUSTERS, n_perm=N_PERM, n_boot=100)
    assert clustered.test == "studentised bootstrap"
    assert clustered.value < 1e-3
    assert clustered.p_value != pytest.approx(1.0 / (1 + N_PERM)), clustered
    # a one-row group a (its mean as its only row) without clusters: its only pair is left out, p = 1
    one_row = gap_test([float(np.mean(A_ROWS))] + B_ROWS, ["a"] + ["b"] * 6, n_perm=N_PERM, n_boot=100)
    assert one_row.p_value == 1.0
    assert clustered.p_value == one_row.p_value
    # and the interval, aligned with a test that does not reject, holds 0
    assert clustered.ci_low == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_gap_test_single_cluster_p_whatever_the_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = np.round(rng.uniform(0, 1, size=3), 1).tolist()  # scores in tenths, as in the report
    b = rng.uniform(0, 1, size=8).tolist()
    result = gap_test(a + b, ["a"] * 3 + ["b"] * 8, clusters=["a0"] * 3 + [f"b{i // 2}" for i in range(8)],
                      n_perm=N_PERM, n_boot=0, seed=seed)
    assert result.p_value == 1.0, result


def test_contrast_test_single_cluster_group() -> None:
    result = contrast_test(VALUES, GROUPS, "a", "b", clusters=CLUSTERS, n_perm=N_PERM, n_boot=100)
    assert result.p_value == 1.0, result


def test_exactly_tied_one_row_group_is_left_out() -> None:
    # an exact tie of a one-row group's mean with the other group: the pair still has no variance and is left out
    b = [0.4, 0.6, 0.45, 0.55, 0.3, 0.7, 0.35, 0.65]  # mean exactly 0.5
    for clusters in (None, list(range(9))):
        result = gap_test([0.5] + b, ["a"] + ["b"] * 8, clusters=clusters, n_perm=N_PERM, n_boot=0)
        assert result.value == 0.0
        assert result.p_value == 1.0, (clusters, result)


def test_single_cluster_pairs_left_out_of_the_statistic() -> None:
    # three groups: a is one cluster, b and c have several; the statistic is b vs c's alone
    def totals(groups: list[list[list[float]]]) -> list[np.ndarray]:
        out = []
        for k in range(6):
            column = []
            for clusters in groups:
                s = np.array([sum(r) for r in clusters])
                n = np.array([float(len(r)) for r in clusters])
                column.append([s.sum(), n.sum(), (s * s).sum(), (s * n).sum(), (n * n).sum(), float(len(s))][k])
            out.append(np.array(column))
        return out

    a = [[0.7, 0.1, 0.1]]
    b = [[0.2, 0.3], [0.4], [0.35, 0.1, 0.2]]
    c = [[0.6, 0.5], [0.45, 0.7], [0.3]]
    _, with_a = _studentised_gaps(*totals([a, b, c]))
    _, without_a = _studentised_gaps(*totals([b, c]))
    assert np.isfinite(without_a) and without_a > 0
    assert with_a == without_a
    _, only_a_pairs = _studentised_gaps(*totals([a, [[0.7, 0.1, 0.1]]]))
    assert only_a_pairs == -np.inf
