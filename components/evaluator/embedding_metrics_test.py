"""Tests for embedding_metrics: every formula against naive loops on small cases."""

import itertools
import math
import time

import numpy as np
import pytest

from components.evaluator import embedding_metrics as em

TOL = 1e-6  # Brute force compares plain Euclidean distances; test data has no near-ties.


def _distance(a, b) -> float:
    return math.sqrt(sum((float(x) - float(y)) ** 2 for x, y in zip(a, b, strict=True)))


def _tie_groups(items):
    """items: [(distance, payload)] -> list of payload lists, ascending, ties chained."""
    items = sorted(items, key=lambda item: item[0])
    groups, last = [], None
    for dist, payload in items:
        if last is None or dist - last > TOL:
            groups.append([])
        groups[-1].append(payload)
        last = dist
    return groups


def _retrieval_oracle(emb, labels, ks):
    """Exact expectation over random orderings inside tie groups, by enumerating them."""
    n = len(labels)
    sums = dict.fromkeys(["p1", "rp", "map", *ks], 0.0)
    queries = 0
    for q in range(n):
        r = sum(labels[j] == labels[q] for j in range(n) if j != q)
        if r == 0:
            continue
        queries += 1
        depth = max(r, *ks)
        groups = _tie_groups(
            [(_distance(emb[q], emb[j]), labels[j] == labels[q]) for j in range(n) if j != q]
        )
        # Only groups starting before `depth` matter; each placement of a group's relevant
        # items among its positions is equally likely.
        used, seen = [], 0
        for group in groups:
            if seen >= depth:
                break
            used.append(group)
            seen += len(group)
        choices = [list(itertools.combinations(range(len(g)), sum(g))) for g in used]
        outcomes = list(itertools.product(*choices))
        for placement in outcomes:
            rel = []
            for group, relevant_positions in zip(used, placement, strict=True):
                rel += [int(i in relevant_positions) for i in range(len(group))]
            weight = 1.0 / len(outcomes)
            sums["p1"] += weight * rel[0]
            for k in ks:
                sums[k] += weight * any(rel[:k])
            sums["rp"] += weight * sum(rel[:r]) / r
            sums["map"] += weight * sum(sum(rel[: i + 1]) / (i + 1) for i in range(r) if rel[i]) / r
    if not queries:
        return None
    result = {
        "precision_at_1": sums["p1"] / queries,
        "r_precision": sums["rp"] / queries,
        "map_at_r": sums["map"] / queries,
    }
    result.update({f"recall_at_{k}": sums[k] / queries for k in ks})
    return result


def _verification_oracle(pos, neg, far_targets):
    auc = 0.0
    for p in pos:
        for q in neg:
            auc += 1.0 if p < q - TOL else 0.5 if abs(p - q) <= TOL else 0.0
    auc /= len(pos) * len(neg)
    # ROC points at every distinct threshold, from (FAR, VAL) = (0, 0).
    points = [(0.0, 0.0, None)]
    for t in sorted(set(pos) | set(neg)):
        far = sum(q <= t for q in neg) / len(neg)
        val = sum(p <= t for p in pos) / len(pos)
        points.append((far, val, t))
    eer = None
    for (far0, val0, _), (far1, val1, _) in itertools.pairwise(points):
        if far1 >= 1.0 - val1:  # First segment reaching FAR == FRR: intersect it.
            a = (1.0 - val0 - far0) / ((far1 - far0) + (val1 - val0))
            eer = far0 + a * (far1 - far0)
            break
    result = {"roc_auc": auc, "eer": eer}
    for target in far_targets:
        ok = [(t, val) for far, val, t in points[1:] if far <= target]
        threshold, val = ok[-1] if ok else (float("nan"), 0.0)
        result[em.val_name(target)], result[em.threshold_name(target)] = val, threshold
    result["mean_positive_distance"] = sum(pos) / len(pos)
    result["mean_negative_distance"] = sum(neg) / len(neg)
    result["distance_gap"] = result["mean_negative_distance"] - result["mean_positive_distance"]
    result[em.POSITIVE_PAIRS], result[em.NEGATIVE_PAIRS] = len(pos), len(neg)
    return result


def _all_pairs(emb, labels):
    pos, neg = [], []
    for i in range(len(labels)):
        for j in range(i + 1, len(labels)):
            (pos if labels[i] == labels[j] else neg).append(_distance(emb[i], emb[j]))
    return pos, neg


def _assert_close(actual: dict, expected: dict):
    for name, value in expected.items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            assert math.isnan(actual[name]), name
        else:
            assert actual[name] == pytest.approx(value, abs=1e-9), name


def _random_case(seed):
    rng = np.random.default_rng(seed)
    if seed % 2:  # A coarse integer grid: many exact distance ties.
        n = int(rng.integers(4, 11))
        emb = rng.integers(-1, 2, size=(n, int(rng.integers(1, 3)))).astype(np.float32)
    else:
        n = int(rng.integers(4, 40))
        emb = rng.normal(size=(n, int(rng.integers(1, 6)))).astype(np.float32)
    labels = [f"id{v}" for v in rng.integers(0, max(2, n // 3), size=n)]
    return emb, labels


@pytest.mark.parametrize("seed", range(12))
def test_retrieval_matches_bruteforce(seed):
    emb, labels = _random_case(seed)
    ks = (1, 2, 3, 50)
    expected = _retrieval_oracle(emb, labels, ks)
    for block_size in (1, 3, 1024):
        actual = em.retrieval_metrics(emb, labels, recall_at_k=ks, block_size=block_size)
        if expected is None:
            assert all(math.isnan(v) for v in actual.values())
        else:
            _assert_close(actual, expected)
            assert actual["precision_at_1"] == pytest.approx(actual["recall_at_1"])
            assert em.precision_at_one(emb, labels, block_size) == pytest.approx(
                expected["precision_at_1"]
            )


@pytest.mark.parametrize("seed", range(4))
def test_partial_sort_with_ties_at_the_cut_off(seed):
    """Enough items that only the nearest few get sorted, with ties straddling the cut."""
    rng = np.random.default_rng(100 + seed)
    emb = rng.integers(0, 30, size=(60, 1)).astype(np.float64)
    labels = list(rng.integers(0, 15, size=60))
    ks = (1, 2, 3)
    expected = _retrieval_oracle(emb, labels, ks)
    for block_size in (1, 1024):  # One query per block: both the cut and the fallback run.
        _assert_close(em.retrieval_metrics(emb, labels, ks, block_size), expected)


@pytest.mark.parametrize("seed", range(12))
def test_verification_matches_bruteforce(seed):
    emb, labels = _random_case(seed)
    pos, neg = _all_pairs(emb, labels)
    fars = (1e-3, 0.05, 0.3)
    actual = em.verification_metrics(emb, labels, far_targets=fars)
    if not pos or not neg:
        assert all(math.isnan(actual[n]) for n in ("roc_auc", "eer", em.val_name(0.3)))
        return
    _assert_close(actual, _verification_oracle(pos, neg, fars))
    assert em.roc_auc(pos, neg) == pytest.approx(actual["roc_auc"])
    assert em.equal_error_rate(pos, neg) == pytest.approx(actual["eer"])


def test_hand_checked_values():
    # 1-D points 0, 1, 2.5, 4 with identities a, a, b, a ("b" has one image: no query).
    # Query 0: a(1) b(2.5) a(4) -> rel 1 0 1. Query 1: a(1) b(1.5) a(3) -> 1 0 1.
    # Query 4: b(1.5) a(3) a(4) -> 0 1 1. R = 2 for each a.
    got = em.embedding_metrics([[0.0], [1.0], [2.5], [4.0]], ["a", "a", "b", "a"])
    expected = {
        "precision_at_1": 2 / 3,
        "recall_at_1": 2 / 3,
        "recall_at_5": 1.0,
        "recall_at_10": 1.0,
        "r_precision": 0.5,
        "map_at_r": (0.5 + 0.5 + 0.5 * (1 / 2)) / 3,
        # Positive distances 1, 4, 3; negative 2.5, 1.5, 1.5. Only the 1 beats negatives.
        "roc_auc": 3 / 9,
        # ROC points (FAR, VAL): (0, 1/3) after 1, (2/3, 1/3) after 1.5: FAR = FRR = 2/3.
        "eer": 2 / 3,
        "val_at_far_1e-3": 1 / 3,
        "val_at_far_1e-2": 1 / 3,
        "threshold_at_far_1e-3": 1.0,
        "threshold_at_far_1e-2": 1.0,
        "mean_positive_distance": 8 / 3,
        "mean_negative_distance": 11 / 6,
        "distance_gap": 11 / 6 - 8 / 3,
        "positive_pairs": 3,
        "negative_pairs": 3,
    }
    assert list(got) == list(expected)
    _assert_close(got, expected)


def test_ties_get_expected_value():
    # Query 0 sees an "a" and a "b" at distance 1 -> 1/2; query 1's nearest is query 0 -> 1.
    got = em.retrieval_metrics([[0.0], [1.0], [-1.0]], ["a", "a", "b"], recall_at_k=(1, 2))
    assert got["precision_at_1"] == got["recall_at_1"] == 0.75
    assert got["recall_at_2"] == 1.0
    assert got["r_precision"] == got["map_at_r"] == 0.75
    # Tied pair distances count half in the AUC.
    assert em.roc_auc([1.0, 2.0], [2.0, 3.0]) == pytest.approx((1 + 1 + 0.5 + 1) / 4)


def test_collapsed_embedding():
    labels = ["a", "a", "b", "b", "b"]
    got = em.embedding_metrics(np.ones((5, 3)), labels)
    # Everything ties: a query with R matches among N - 1 = 4 scores R / 4 per position.
    assert got["precision_at_1"] == pytest.approx((2 * 1 / 4 + 3 * 2 / 4) / 5)
    assert got["r_precision"] == pytest.approx((2 * 1 / 4 + 3 * 2 / 4) / 5)
    # b: (1/2) * [P(rel 1) * 1 + (1/2) * P(rel 2) * (1 + P(rel 1 | rel 2))] with 2 of 4.
    map_b = 0.5 * (2 / 4 + 0.5 * 2 / 4 * (1 + 1 / 3))
    assert got["map_at_r"] == pytest.approx((2 * 1 / 4 + 3 * map_b) / 5)
    # recall@k = 1 - C(4 - R, k) / C(4, k); k >= 4 covers the whole gallery.
    assert got["recall_at_1"] == pytest.approx(got["precision_at_1"])
    assert got["recall_at_5"] == got["recall_at_10"] == 1.0
    assert got["roc_auc"] == 0.5 and got["eer"] == 0.5
    assert got["val_at_far_1e-3"] == 0.0 and math.isnan(got["threshold_at_far_1e-3"])
    assert got["mean_positive_distance"] == got["mean_negative_distance"] == 0.0
    assert got["distance_gap"] == 0.0


def test_perfect_separation():
    emb = [[0.0, 0.0], [0.0, 1.0], [0.0, 0.5], [10.0, 0.0], [10.0, 1.0]]
    got = em.embedding_metrics(emb, [1, 1, 1, 2, 2])
    for name in ("precision_at_1", "recall_at_1", "r_precision", "map_at_r", "roc_auc"):
        assert got[name] == 1.0, name
    assert got["eer"] == 0.0
    assert got["val_at_far_1e-2"] == 1.0
    # The largest distance accepting no negative pair: the largest positive distance.
    assert got["threshold_at_far_1e-2"] == 1.0
    assert got["distance_gap"] > 9


def test_singleton_identities_are_excluded_but_still_distract():
    assert em.precision_at_one([[0.0], [10.0], [1.0]], ["a", "a", "c"]) == 0.0
    got = em.retrieval_metrics([[0.0], [10.0], [1.0], [11.0]], ["a", "a", "c", "a"])
    assert got["precision_at_1"] == pytest.approx(2 / 3)
    nan = em.embedding_metrics(np.eye(3), ["a", "b", "c"])
    assert all(math.isnan(nan[n]) for n in em.retrieval_metric_names())
    assert math.isnan(nan["roc_auc"]) and math.isnan(nan["mean_positive_distance"])
    assert nan["mean_negative_distance"] == pytest.approx(math.sqrt(2))


def test_non_finite_embeddings_give_nan():
    got = em.embedding_metrics([[0.0], [np.nan], [1.0], [2.0]], ["a", "a", "b", "b"])
    assert all(math.isnan(v) for v in got.values())


def test_order_invariance_with_sampling():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 12, size=80)
    emb = rng.normal(size=(80, 4)) + 2 * rng.normal(size=(12, 4))[labels]
    perm = rng.permutation(80)
    a = em.embedding_metrics(emb, labels, max_pairs=400, seed=3)
    b = em.embedding_metrics(emb[perm], labels[perm], max_pairs=400, seed=3)
    for name in a:
        assert b[name] == pytest.approx(a[name], rel=1e-12), name
    c = em.embedding_metrics(emb, labels, max_pairs=400, seed=4)
    assert c["mean_negative_distance"] != a["mean_negative_distance"]


def test_pair_sampling():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 6, size=60)
    emb = rng.normal(size=(60, 3))
    n_pos = sum(c * (c - 1) // 2 for c in np.bincount(labels))
    # Budget fits all pairs: exactly the i < j pairs.
    i, j = em.verification_pairs(emb, labels, max_pairs=60 * 59 // 2)
    assert len(i) == 60 * 59 // 2 and np.all(i < j)
    # Every positive pair fits in half the budget: all of them, plus sampled negatives.
    i, j = em.verification_pairs(emb, labels, max_pairs=2 * n_pos + 10)
    same = labels[i] == labels[j]
    assert len(i) == 2 * n_pos + 10 and np.all(i != j)
    assert {tuple(sorted(p)) for p in zip(i[same], j[same], strict=True)} == {
        (a, b) for a in range(60) for b in range(a + 1, 60) if labels[a] == labels[b]
    }
    assert same.sum() == n_pos
    counted = em.verification_metrics(emb, labels, max_pairs=2 * n_pos + 10)
    assert counted[em.POSITIVE_PAIRS] == n_pos and counted[em.NEGATIVE_PAIRS] == n_pos + 10
    # Too many positives: half the budget each.
    two = np.repeat([0, 1], 30)
    i, j = em.verification_pairs(rng.normal(size=(60, 3)), two, max_pairs=1000, seed=1)
    assert len(i) == 1000 and (two[i] == two[j]).sum() == 500 and np.all(i != j)


def test_pair_sampler_is_uniform_per_kind():
    codes = np.array([0, 0, 0, 1, 1, 2, 3, 3, 3, 3])
    rng = np.random.default_rng(0)
    for positive in (True, False):
        i, j = em._sample_pairs(codes, 50_000, positive, rng)
        assert np.all((codes[i] == codes[j]) == positive) and np.all(i != j)
        pairs = np.sort(np.stack([i, j]), axis=0)
        _, counts = np.unique(pairs, axis=1, return_counts=True)
        population = sum(
            (codes[a] == codes[b]) == positive for a in range(10) for b in range(a + 1, 10)
        )
        assert counts.size == population  # every pair of this kind was drawn ...
        expected = 50_000 / population
        assert np.all(np.abs(counts - expected) < 6 * np.sqrt(expected))  # ... equally often


def test_sample_estimates_full_values():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 6, size=200)
    emb = rng.normal(size=(200, 3)) + rng.normal(size=(6, 3))[labels]
    # A sample estimates the full-pair values.
    full = em.verification_metrics(emb, labels)
    sampled = em.verification_metrics(emb, labels, max_pairs=8_000, seed=1)
    for name in ("mean_positive_distance", "mean_negative_distance", "roc_auc"):
        assert sampled[name] == pytest.approx(full[name], abs=0.02), name


def test_names_and_errors():
    assert em.metric_names() == [
        "precision_at_1",
        "recall_at_1",
        "recall_at_5",
        "recall_at_10",
        "r_precision",
        "map_at_r",
        "roc_auc",
        "eer",
        "val_at_far_1e-3",
        "val_at_far_1e-2",
        "threshold_at_far_1e-3",
        "threshold_at_far_1e-2",
        "mean_positive_distance",
        "mean_negative_distance",
        "distance_gap",
        "positive_pairs",
        "negative_pairs",
    ]
    assert em.val_name(0.0015) == "val_at_far_1.5e-3"
    emb = [[0.0], [0.1], [5.0], [5.1]]
    assert em.precision_at_one(emb, [b"3", b"3", b"person1", b"person1"]) == 1.0
    assert em.precision_at_one(emb, np.array([7, 7, 1, 1])) == 1.0
    for bad in (
        lambda: em.embedding_metrics(emb, ["a", "a", "b"]),
        lambda: em.embedding_metrics([0.0, 1.0], ["a", "b"]),
        lambda: em.metric_names(recall_at_k=(0,)),
        lambda: em.metric_names(recall_at_k=(5, 5)),
        lambda: em.metric_names(far_targets=(0.0,)),
        lambda: em.verification_metrics(emb, ["a", "a", "b", "b"], max_pairs=0),
    ):
        with pytest.raises(ValueError):
            bad()


def test_timing_print_only():
    """Prints the cost of 2,000 x 64 (benchmarks/evaluator_metrics.py does 10,000 x 64)."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 200, size=2000)
    emb = rng.normal(size=(2000, 64)).astype(np.float32) + rng.normal(size=(200, 64))[labels]
    start = time.perf_counter()
    em.embedding_metrics(emb, labels)
    print(f"embedding_metrics 2000 x 64: {time.perf_counter() - start:.2f} s")


def test_fallback_full_sort_in_row_chunks(monkeypatch):
    monkeypatch.setattr(em, "_MAX_SORT_ELEMENTS", 1)  # Fully sort one query row at a time.
    rng = np.random.default_rng(100)
    emb = rng.integers(0, 30, size=(60, 1)).astype(np.float64)  # Ties straddle the cut.
    labels = list(rng.integers(0, 15, size=60))
    expected = _retrieval_oracle(emb, labels, (1, 2))
    _assert_close(em.retrieval_metrics(emb, labels, recall_at_k=(1, 2)), expected)
