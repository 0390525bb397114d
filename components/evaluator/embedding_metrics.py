"""Embedding-quality formulas in NumPy: leave-one-out retrieval and pair verification.

The single definition of every metric that the TFMA wrapper
(`components.evaluator.tfma_embedding_metrics.EmbeddingMetrics`) reports. Pure functions, no
TensorFlow, so they are cheap to test against brute-force loops and to benchmark.

Conventions shared by all metrics:
  * Distance is Euclidean on the embeddings as given (for unit-norm embeddings it ranks
    like cosine similarity). Labels may be str, bytes or ints; only equality matters.
  * Non-finite embeddings make every metric NaN (a NaN fails every TFMA threshold).
  * Results do not depend on the order of the examples (Beam delivers them in any order),
    up to floating-point rounding of sums.

Retrieval (leave-one-out on the eval split; the gallery of a query is every other item):
  * R = number of other items sharing the query's identity. Queries with R = 0 (identities
    with a single item) are left out of every retrieval mean; they stay in the gallery as
    distractors. No query with R > 0 -> NaN.
  * precision_at_1: fraction of queries whose nearest other item shares their identity.
  * recall_at_k: fraction of queries with at least one same-identity item among their k
    nearest others (k larger than the gallery is capped at the gallery size).
  * r_precision (Musgrave et al. 2020, "A Metric Learning Reality Check"): same-identity
    items among the R nearest, divided by R.
  * map_at_r (same paper): mean over queries of (1/R) * sum_{i=1..R} P(i) * rel(i), where
    rel(i) says whether the i-th nearest shares the identity and P(i) is the precision
    among the i nearest.
  * Ties: gallery items whose squared distances to the query lie within `TIE_TOLERANCE`
    of each other (chained along the sorted order) are tied. Every retrieval metric is the
    exact expected value under uniformly random ordering inside each tie group, so e.g.
    precision_at_1 == recall_at_1, and for a collapsed embedding (all vectors equal) each
    query scores R / (N - 1) in precision_at_1 and r_precision.

Verification (pairs of eval items; a pair is positive when both share an identity):
  * Pair set: all pairs i < j when there are at most `max_pairs` of them. Otherwise a
    seeded random sample, drawn with replacement and stratified by pair type: every
    positive pair if they fit in half the budget (else a uniform sample of half the budget)
    and a uniform sample of negative pairs for the rest. All verification metrics are
    conditional on the pair type (functions of the positive-distance and the
    negative-distance distributions separately), so stratification does not bias them.
  * A pair is accepted when its distance is <= a threshold. FAR = accepted negative pairs /
    negative pairs; VAL (true accept rate) = accepted positive pairs / positive pairs
    (FaceNet's definitions).
  * roc_auc: P(positive distance < negative distance) + 0.5 * P(tie), i.e. the area under
    the ROC curve drawn through the tie groups with straight segments.
  * eer: the rate at which that same ROC curve crosses FAR == 1 - VAL (exact intersection
    of the segment, so the EER of a collapsed embedding is 0.5 and of a perfectly
    separating one is 0).
  * val_at_far_<f> / threshold_at_far_<f>: the largest observed pair distance t with
    FAR(t) <= f, and VAL(t). Tied distances are accepted or rejected together. When even
    the smallest distance has FAR > f nothing can be accepted: VAL = 0, threshold = NaN.
    With fewer than 1/f negative pairs this is the largest threshold accepting no negative.
  * mean_positive_distance, mean_negative_distance over the pair set, and
    distance_gap = mean_negative_distance - mean_positive_distance (about 0 for a
    collapsed embedding).
  * positive_pairs, negative_pairs: how many pairs of each kind were evaluated, so a reader
    of the metrics (ServingModel's calibration) knows which FARs they can measure.
  * Pair distances are ties when within `TIE_TOLERANCE` of each other (chained).
  * No positive or no negative pair -> those metrics are NaN.

Cost: distances are computed for `block_size` queries at a time (memory O(block_size * N));
each query sorts only its max(R, k) + 1 nearest neighbours unless a tie group straddles
that cut (e.g. a collapsed embedding), in which case its rows are fully sorted a few at a
time. No Python loop runs over items or pairs. 10,000 x 64 takes seconds
(benchmarks/evaluator_metrics.py).
"""

from collections.abc import Sequence

import numpy as np

TIE_TOLERANCE = 1e-9
DEFAULT_RECALL_AT_K = (1, 5, 10)
DEFAULT_MAX_PAIRS = 1_000_000
DEFAULT_FAR_TARGETS = (1e-3, 1e-2)
DEFAULT_SEED = 0
DEFAULT_BLOCK_SIZE = 1024
_PAIR_CHUNK = 1 << 16
_MAX_SORT_ELEMENTS = 1 << 22  # Rows fully sorted at once: about 32 MB per array.

PRECISION_AT_1 = "precision_at_1"
R_PRECISION = "r_precision"
MAP_AT_R = "map_at_r"
ROC_AUC = "roc_auc"
EER = "eer"
MEAN_POSITIVE_DISTANCE = "mean_positive_distance"
MEAN_NEGATIVE_DISTANCE = "mean_negative_distance"
DISTANCE_GAP = "distance_gap"
# How many pairs of each kind the verification metrics were measured on: a FAR f is measurable
# only with 1/f negative pairs or more (ServingSettings.calibration_far).
POSITIVE_PAIRS = "positive_pairs"
NEGATIVE_PAIRS = "negative_pairs"
# Summaries of the pair set, not rates: never a gating metric.
PAIR_SUMMARY_NAMES = (
    MEAN_POSITIVE_DISTANCE,
    MEAN_NEGATIVE_DISTANCE,
    DISTANCE_GAP,
    POSITIVE_PAIRS,
    NEGATIVE_PAIRS,
)
# The no-learning reference (raw pixels) and the model's map_at_r gain over it: emitted by the
# TFMA wrapper when it is given the image size, for the blessing floor.
REFERENCE_MAP_AT_R = "reference_map_at_r"
MAP_AT_R_GAIN = "map_at_r_gain_over_reference"
REFERENCE_METRIC_NAMES = (REFERENCE_MAP_AT_R, MAP_AT_R_GAIN)


def recall_name(k: int) -> str:
    return f"recall_at_{k}"


def _far_suffix(far: float) -> str:
    return np.format_float_scientific(far, trim="-", exp_digits=1)  # 1e-3, 1.5e-3, ...


def val_name(far: float) -> str:
    return f"val_at_far_{_far_suffix(far)}"


def threshold_name(far: float) -> str:
    return f"threshold_at_far_{_far_suffix(far)}"


def _check_options(recall_at_k: Sequence[int], far_targets: Sequence[float]) -> None:
    ks = list(recall_at_k)
    if any(isinstance(k, bool) or int(k) != k or k < 1 for k in ks) or len(set(ks)) != len(ks):
        raise ValueError(f"recall_at_k must be distinct positive integers, got {ks}")
    fars = list(far_targets)
    if any(not 0.0 < far <= 1.0 for far in fars):
        raise ValueError(f"far_targets must lie in (0, 1], got {fars}")
    if len({_far_suffix(far) for far in fars}) != len(fars):
        raise ValueError(f"far_targets must be distinct, got {fars}")


def retrieval_metric_names(recall_at_k: Sequence[int] = DEFAULT_RECALL_AT_K) -> list[str]:
    return [PRECISION_AT_1, *(recall_name(int(k)) for k in recall_at_k), R_PRECISION, MAP_AT_R]


def verification_metric_names(far_targets: Sequence[float] = DEFAULT_FAR_TARGETS) -> list[str]:
    return [
        ROC_AUC,
        EER,
        *(val_name(far) for far in far_targets),
        *(threshold_name(far) for far in far_targets),
        *PAIR_SUMMARY_NAMES,
    ]


def metric_names(
    recall_at_k: Sequence[int] = DEFAULT_RECALL_AT_K,
    far_targets: Sequence[float] = DEFAULT_FAR_TARGETS,
) -> list[str]:
    """Names of every metric `embedding_metrics` returns, in its order."""
    _check_options(recall_at_k, far_targets)
    names = retrieval_metric_names(recall_at_k) + verification_metric_names(far_targets)
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate metric names: {names}")
    return names


_NOT_GATEABLE = {EER, *PAIR_SUMMARY_NAMES}


def gating_metric_names(
    recall_at_k: Sequence[int] = DEFAULT_RECALL_AT_K,
    far_targets: Sequence[float] = DEFAULT_FAR_TARGETS,
) -> list[str]:
    """Metrics where higher is better on a fixed 0..1 scale: valid `gating_metric`s."""
    thresholds = {threshold_name(far) for far in far_targets}
    return [
        name
        for name in metric_names(recall_at_k, far_targets)
        if name not in _NOT_GATEABLE and name not in thresholds
    ]


def _prepare(embeddings, labels) -> tuple[np.ndarray, np.ndarray]:
    emb = np.asarray(embeddings, dtype=np.float64)
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be 2-D, got shape {emb.shape}")
    _, codes = np.unique(np.asarray(labels).reshape(-1), return_inverse=True)
    codes = codes.reshape(-1)
    if codes.shape[0] != emb.shape[0]:
        raise ValueError(f"{codes.shape[0]} labels for {emb.shape[0]} embeddings")
    return emb, codes


# --- Retrieval ---------------------------------------------------------------------------------


def _sorted_neighbours(dist: np.ndarray, need: np.ndarray):
    """Yields (row slice, indices, tie-group start, end) of each row's nearest gallery items,
    ascending, complete up to position need[q] - 1 including the whole tie group there.

    `dist` holds +inf in the query's own column, which therefore never appears. Usually only
    the need.max() + 1 nearest get sorted; if a tie group straddles that cut, the rows are
    fully sorted instead, a few at a time to bound memory.
    """
    n_gallery = dist.shape[1] - 1
    width = min(int(need.max()) + 1, n_gallery)
    if 4 * width < n_gallery:
        part = np.argpartition(dist, width - 1, axis=1)[:, :width]
        part_vals = np.take_along_axis(dist, part, axis=1)
        order = np.argsort(part_vals, axis=1)
        start, end = _group_bounds(np.take_along_axis(part_vals, order, axis=1))
        if np.all(end[np.arange(need.size), need - 1] < width):
            yield slice(None), np.take_along_axis(part, order, axis=1), start, end
            return
        del part, part_vals, order, start, end
    step = max(1, _MAX_SORT_ELEMENTS // dist.shape[1])
    for lo in range(0, dist.shape[0], step):
        idx = np.argsort(dist[lo : lo + step], axis=1)[:, :n_gallery]  # +inf self sorts last
        vals = np.take_along_axis(dist[lo : lo + step], idx, axis=1)
        yield (slice(lo, lo + step), idx, *_group_bounds(vals))


def _group_bounds(vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per position of each (ascending) row: start and end (exclusive) of its tie group."""
    width = vals.shape[1]
    pos = np.arange(width)
    new = np.ones(vals.shape, dtype=bool)
    new[:, 1:] = np.diff(vals, axis=1) > TIE_TOLERANCE
    start = np.maximum.accumulate(np.where(new, pos, 0), axis=1)
    last = np.ones(vals.shape, dtype=bool)
    last[:, :-1] = new[:, 1:]
    end = np.minimum.accumulate(np.where(last, pos + 1, width)[:, ::-1], axis=1)[:, ::-1]
    return start, end


def _none_drawn(group: np.ndarray, relevant: np.ndarray, drawn: np.ndarray) -> np.ndarray:
    """P(no relevant item) when `drawn` of `group` items (`relevant` of them relevant) are
    drawn without replacement: C(group - relevant, drawn) / C(group, drawn)."""
    prob = np.ones(group.shape, dtype=np.float64)
    for t in range(int(drawn.max(initial=0))):
        active = t < drawn
        factor = np.divide(
            np.maximum(group - relevant - t, 0),
            group - t,
            out=np.ones(group.shape, dtype=np.float64),
            where=active,
        )
        prob *= factor
    return prob


def _retrieval(
    emb: np.ndarray,
    codes: np.ndarray,
    recall_at_k: Sequence[int],
    block_size: int,
    with_r: bool = True,
) -> dict[str, float]:
    ks = [int(k) for k in recall_at_k]
    names = retrieval_metric_names(ks) if with_r else [PRECISION_AT_1]
    n = codes.shape[0]
    r_all = np.bincount(codes)[codes] - 1 if n else np.zeros(0, dtype=np.int64)
    queries = np.flatnonzero(r_all > 0)
    if queries.size == 0 or not np.isfinite(emb).all():
        return dict.fromkeys(names, float("nan"))
    capped = [min(k, n - 1) for k in ks]
    sums = dict.fromkeys(names, 0.0)
    sq_norms = np.einsum("ij,ij->i", emb, emb)
    for begin in range(0, queries.size, block_size):
        rows = queries[begin : begin + block_size]
        # ||q - x||^2 minus the per-row constant ||q||^2, computed in place.
        dist = emb[rows] @ emb.T
        dist *= -2.0
        dist += sq_norms[None, :]
        dist[np.arange(rows.size), rows] = np.inf
        r = r_all[rows]
        need = np.maximum(r, max(capped, default=1)) if with_r else np.full(rows.size, 1)
        for chunk, idx, start, end in _sorted_neighbours(dist, need):
            relevant = codes[idx] == codes[rows[chunk]][:, None]
            scores = _score_rows(relevant, start, end, r[chunk], ks, capped, with_r)
            for name, value in scores.items():
                sums[name] += value
    return {name: float(sums[name] / queries.size) for name in names}


def _score_rows(relevant, start, end, r, ks, capped, with_r) -> dict[str, float]:
    """Sums over rows of each metric's expected value; rows sorted by distance."""
    cum_rel = np.zeros((relevant.shape[0], relevant.shape[1] + 1))
    np.cumsum(relevant, axis=1, out=cum_rel[:, 1:])
    width = int(np.max(r)) if with_r else 1  # Columns past the largest R never count.
    width = max(width, max(capped, default=1))
    start, end = start[:, :width], end[:, :width]
    before = np.take_along_axis(cum_rel, start, axis=1)  # relevant before the group
    in_group = np.take_along_axis(cum_rel, end, axis=1) - before
    size = end - start
    expected_rel = in_group / size
    sums = {PRECISION_AT_1: expected_rel[:, 0].sum()}
    if not with_r:
        return sums
    for k, k_capped in zip(ks, capped, strict=True):
        p = k_capped - 1
        none = _none_drawn(size[:, p], in_group[:, p], k_capped - start[:, p])
        sums[recall_name(k)] = np.sum(1.0 - np.where(before[:, p] > 0, 0.0, none))
    pos = np.arange(width)
    in_top_r = pos[None, :] < r[:, None]
    sums[R_PRECISION] = np.sum(np.where(in_top_r, expected_rel, 0.0).sum(axis=1) / r)
    # E[rel(i) * hits(i)] for the i-th position, j-th inside its group of size g holding
    # m relevant items after h earlier ones: (m/g) * (1 + h + (j - 1)(m - 1)/(g - 1)).
    earlier_in_group = np.divide(
        (pos[None, :] - start) * (in_group - 1),
        size - 1,
        out=np.zeros(size.shape),
        where=size > 1,
    )
    precision_terms = expected_rel * (1.0 + before + earlier_in_group) / (pos + 1.0)
    sums[MAP_AT_R] = np.sum(np.where(in_top_r, precision_terms, 0.0).sum(axis=1) / r)
    return sums


def retrieval_metrics(
    embeddings,
    labels,
    recall_at_k: Sequence[int] = DEFAULT_RECALL_AT_K,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> dict[str, float]:
    """Leave-one-out precision_at_1, recall_at_<k>, r_precision and map_at_r."""
    _check_options(recall_at_k, ())
    emb, codes = _prepare(embeddings, labels)
    return _retrieval(emb, codes, recall_at_k, block_size)


def precision_at_one(embeddings, labels, block_size: int = DEFAULT_BLOCK_SIZE) -> float:
    """Leave-one-out 1-NN precision of `embeddings` [N, D] w.r.t. `labels` [N]."""
    emb, codes = _prepare(embeddings, labels)
    return _retrieval(emb, codes, (), block_size, with_r=False)[PRECISION_AT_1]


# --- Verification ------------------------------------------------------------------------------


def _class_layout(codes: np.ndarray):
    """Items sorted by identity, each item's position there, class offsets and sizes."""
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty_like(order)
    rank[order] = np.arange(codes.size)
    return order, rank, offsets, counts


def _all_positive_pairs(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order, _, offsets, counts = _class_layout(codes)
    sorted_pos = np.arange(codes.size)
    partners = (offsets + counts)[codes[order]] - sorted_pos - 1
    first = np.repeat(sorted_pos, partners)
    segment_start = np.repeat(np.cumsum(partners) - partners, partners)
    second = first + 1 + np.arange(first.size) - segment_start
    return order[first], order[second]


def _sample_pairs(codes: np.ndarray, size: int, positive: bool, rng) -> tuple[np.ndarray, ...]:
    """`size` pairs drawn uniformly, with replacement, among positive (or negative) pairs.

    Picks the first item with probability proportional to its number of partners, then a
    partner uniformly: every unordered pair gets probability 2 / (2 * number of pairs).
    """
    order, rank, offsets, counts = _class_layout(codes)
    own = counts[codes]
    partners = own - 1 if positive else codes.size - own
    first = rng.choice(codes.size, size=size, p=partners / partners.sum())
    draw = rng.integers(0, partners[first])
    start, count = offsets[codes[first]], own[first]
    if positive:
        within = draw + (draw >= rank[first] - start)  # skip the first item itself
        second_sorted = start + within
    else:
        second_sorted = np.where(draw < start, draw, draw + count)  # skip its own class
    return first, order[second_sorted]


def verification_pairs(
    embeddings, labels, max_pairs: int = DEFAULT_MAX_PAIRS, seed: int = DEFAULT_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays (i, j) of the evaluated pairs (see the module docstring)."""
    emb, codes = _prepare(embeddings, labels)
    return _pairs(emb, codes, max_pairs, seed)


def _pairs(emb, codes, max_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if max_pairs < 1:
        raise ValueError(f"max_pairs must be positive, got {max_pairs}")
    n = codes.size
    if n * (n - 1) // 2 <= max_pairs:
        return np.triu_indices(n, 1)
    # Sample in a canonical item order (identity, then embedding values) so that the
    # seeded sample does not depend on the order in which the examples arrived.
    canonical = np.lexsort(np.vstack([emb.T[::-1], codes[None, :]]))
    codes = codes[canonical]
    rng = np.random.default_rng(seed)
    counts = np.bincount(codes)
    n_positive = int(np.sum(counts * (counts - 1) // 2))
    if n_positive <= max_pairs // 2:
        pos_i, pos_j = _all_positive_pairs(codes)
    else:
        pos_i, pos_j = _sample_pairs(codes, max_pairs // 2, True, rng)
    n_negative = n * (n - 1) // 2 - n_positive
    neg_size = max_pairs - pos_i.size if n_negative else 0
    neg_i, neg_j = _sample_pairs(codes, neg_size, False, rng) if neg_size else ((), ())
    first = np.concatenate([pos_i, neg_i]).astype(np.int64)
    second = np.concatenate([pos_j, neg_j]).astype(np.int64)
    return canonical[first], canonical[second]


def pair_distances(embeddings, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Euclidean distances between rows first[p] and second[p], in chunks."""
    emb = np.asarray(embeddings, dtype=np.float64)
    out = np.empty(len(first))
    for begin in range(0, len(first), _PAIR_CHUNK):
        diff = emb[first[begin : begin + _PAIR_CHUNK]] - emb[second[begin : begin + _PAIR_CHUNK]]
        out[begin : begin + _PAIR_CHUNK] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    return out


def roc_points(positive: np.ndarray, negative: np.ndarray):
    """Per tie group (ascending distance): its largest distance, cumulative VAL and FAR."""
    dist = np.concatenate([positive, negative])
    is_pos = np.concatenate([np.ones(positive.size, bool), np.zeros(negative.size, bool)])
    order = np.argsort(dist)  # the order inside a tie group does not matter
    dist, is_pos = dist[order], is_pos[order]
    group = np.concatenate([[0], np.cumsum(np.diff(dist) > TIE_TOLERANCE)])
    last = np.flatnonzero(np.append(group[1:] != group[:-1], True))
    accepted_pos = np.cumsum(is_pos)[last]
    accepted_neg = (last + 1) - accepted_pos
    return dist[last], accepted_pos / positive.size, accepted_neg / negative.size


def _checked(positive_distances, negative_distances):
    pos = np.asarray(positive_distances, dtype=np.float64).reshape(-1)
    neg = np.asarray(negative_distances, dtype=np.float64).reshape(-1)
    return (pos, neg) if pos.size and neg.size else None


def _auc_from_points(val: np.ndarray, far: np.ndarray) -> float:
    val_before = np.concatenate([[0.0], val[:-1]])
    far_before = np.concatenate([[0.0], far[:-1]])
    return float(np.sum((far - far_before) * (val + val_before) / 2.0))


def _eer_from_points(val: np.ndarray, far: np.ndarray) -> float:
    val, far = np.concatenate([[0.0], val]), np.concatenate([[0.0], far])
    excess = far + val - 1.0  # FAR - FRR: -1 at the origin, +1 at (1, 1), non-decreasing.
    k = int(np.argmax(excess >= 0.0))
    alpha = -excess[k - 1] / (excess[k] - excess[k - 1])
    return float(far[k - 1] + alpha * (far[k] - far[k - 1]))


def _val_from_points(threshold, val, far, far_target: float) -> tuple[float, float]:
    k = int(np.searchsorted(far, far_target * (1.0 + 1e-12), side="right")) - 1
    if k < 0:
        return 0.0, float("nan")
    return float(val[k]), float(threshold[k])


def roc_auc(positive_distances, negative_distances) -> float:
    """P(positive distance < negative distance) + 0.5 * P(tie); NaN if a side is empty."""
    checked = _checked(positive_distances, negative_distances)
    return _auc_from_points(*roc_points(*checked)[1:]) if checked else float("nan")


def equal_error_rate(positive_distances, negative_distances) -> float:
    """Where the tie-group ROC curve meets FAR == 1 - VAL; NaN if a side is empty."""
    checked = _checked(positive_distances, negative_distances)
    return _eer_from_points(*roc_points(*checked)[1:]) if checked else float("nan")


def val_at_far(positive_distances, negative_distances, far_target: float) -> tuple[float, float]:
    """(VAL, threshold) at the largest distance threshold whose FAR <= far_target."""
    checked = _checked(positive_distances, negative_distances)
    if not checked:
        return float("nan"), float("nan")
    return _val_from_points(*roc_points(*checked), far_target)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


def _verification(emb, codes, max_pairs, seed, far_targets) -> dict[str, float]:
    names = verification_metric_names(far_targets)
    result = dict.fromkeys(names, float("nan"))
    if not np.isfinite(emb).all():
        return result
    first, second = _pairs(emb, codes, max_pairs, seed)
    dist = pair_distances(emb, first, second)
    same = codes[first] == codes[second]
    pos, neg = dist[same], dist[~same]
    result[POSITIVE_PAIRS], result[NEGATIVE_PAIRS] = float(pos.size), float(neg.size)
    if pos.size and neg.size:
        points = roc_points(pos, neg)  # one sort serves every verification metric
        result[ROC_AUC] = _auc_from_points(*points[1:])
        result[EER] = _eer_from_points(*points[1:])
        for far in far_targets:
            result[val_name(far)], result[threshold_name(far)] = _val_from_points(*points, far)
    result[MEAN_POSITIVE_DISTANCE] = _mean(pos)
    result[MEAN_NEGATIVE_DISTANCE] = _mean(neg)
    result[DISTANCE_GAP] = result[MEAN_NEGATIVE_DISTANCE] - result[MEAN_POSITIVE_DISTANCE]
    return {name: result[name] for name in names}


def verification_metrics(
    embeddings,
    labels,
    max_pairs: int = DEFAULT_MAX_PAIRS,
    seed: int = DEFAULT_SEED,
    far_targets: Sequence[float] = DEFAULT_FAR_TARGETS,
) -> dict[str, float]:
    """roc_auc, eer, val/threshold_at_far_<f> and mean pair distances over the pair set."""
    _check_options((), far_targets)
    emb, codes = _prepare(embeddings, labels)
    return _verification(emb, codes, max_pairs, seed, far_targets)


def embedding_metrics(
    embeddings,
    labels,
    recall_at_k: Sequence[int] = DEFAULT_RECALL_AT_K,
    max_pairs: int = DEFAULT_MAX_PAIRS,
    seed: int = DEFAULT_SEED,
    far_targets: Sequence[float] = DEFAULT_FAR_TARGETS,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> dict[str, float]:
    """Every metric of this module, keyed as `metric_names(recall_at_k, far_targets)`."""
    names = metric_names(recall_at_k, far_targets)
    emb, codes = _prepare(embeddings, labels)
    result = _retrieval(emb, codes, recall_at_k, block_size)
    result.update(_verification(emb, codes, max_pairs, seed, far_targets))
    return {name: result[name] for name in names}
