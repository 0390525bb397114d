"""Online triplet mining losses over a batch of labelled embeddings, in O(B^2) memory.

Each strategy maps (labels [B], embeddings [B, D]) to (loss, active_fraction):
- semi_hard (FaceNet, TF Addons' semantics): for each anchor-positive pair, the closest negative
  farther than the positive; if none is farther, the farthest negative.
- batch_hard (Hermans et al. 2017): per anchor, its farthest positive and closest negative.
- batch_all: every valid (anchor, positive, negative) triplet, averaged over the active ones.
Anchors without a positive or without a negative in the batch contribute nothing. A loss with no
valid triplet is 0 with zero gradients. `active_fraction` is the share of valid triplets with a
non-zero loss, a signal of how much the batch still teaches.

`random_triplets` is the original notebook's loss on explicit (anchor, positive, negative)
embeddings: max(mean((a - p)^2) - mean((a - n)^2) + margin, 0), the means over the embedding
dimensions, averaged over the batch.
"""

import tensorflow as tf

STRATEGIES = ("semi_hard", "batch_hard", "batch_all")


def pairwise_distances(embeddings: tf.Tensor, squared: bool = False) -> tf.Tensor:
    """[B, B] Euclidean (or squared) distances, with a finite gradient at zero distance."""
    dot = tf.matmul(embeddings, embeddings, transpose_b=True)
    norms = tf.linalg.diag_part(dot)
    distances = tf.maximum(norms[:, None] - 2.0 * dot + norms[None, :], 0.0)
    if squared:
        return distances
    zero = tf.cast(tf.equal(distances, 0.0), distances.dtype)
    return tf.sqrt(distances + zero * 1e-16) * (1.0 - zero)


def _masks(labels: tf.Tensor):
    labels = tf.reshape(labels, [-1])
    same = tf.equal(labels[:, None], labels[None, :])
    not_self = tf.logical_not(tf.eye(tf.shape(labels)[0], dtype=tf.bool))
    return tf.logical_and(same, not_self), tf.logical_not(same)


def _hinge(gap: tf.Tensor, margin: float, soft: bool) -> tf.Tensor:
    return tf.nn.softplus(gap) if soft else tf.maximum(gap + margin, 0.0)


def _safe_mean(values: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    mask = tf.cast(mask, values.dtype)
    return tf.reduce_sum(tf.where(mask > 0, values, 0.0)) / tf.maximum(tf.reduce_sum(mask), 1.0)


def _sorted_negatives(distances, negative_mask):
    """Each anchor's negative distances in ascending order, padded with +inf."""
    inf = tf.constant(float("inf"), distances.dtype)
    return tf.sort(tf.where(negative_mask, distances, inf), axis=1)


def semi_hard(labels, embeddings, margin=0.2, squared=False, soft=False):
    distances = pairwise_distances(embeddings, squared)
    positive_mask, negative_mask = _masks(labels)
    has_negative = tf.reduce_any(negative_mask, axis=1, keepdims=True)
    sorted_negatives = _sorted_negatives(distances, negative_mask)
    # First negative strictly farther than each positive, found by binary search per anchor.
    farther = tf.searchsorted(sorted_negatives, distances, side="right")
    count = tf.shape(distances)[1]
    semi_hard_negatives = tf.gather(sorted_negatives, tf.minimum(farther, count - 1), batch_dims=1)
    semi_hard_negatives = tf.where(farther < count, semi_hard_negatives, float("inf"))
    farthest_negative = tf.reduce_max(
        tf.where(negative_mask, distances, -1.0), axis=1, keepdims=True
    )
    negatives = tf.where(
        tf.math.is_finite(semi_hard_negatives), semi_hard_negatives, farthest_negative
    )
    valid = tf.logical_and(positive_mask, has_negative)
    negatives = tf.where(valid, negatives, 0.0)
    losses = _hinge(distances - negatives, margin, soft)
    return _safe_mean(losses, valid), _safe_mean(tf.cast(losses > 0, losses.dtype), valid)


def batch_hard(labels, embeddings, margin=0.2, squared=False, soft=False):
    distances = pairwise_distances(embeddings, squared)
    positive_mask, negative_mask = _masks(labels)
    hardest_positive = tf.reduce_max(tf.where(positive_mask, distances, 0.0), axis=1)
    closest_negative = tf.reduce_min(
        tf.where(negative_mask, distances, tf.reduce_max(distances)), axis=1
    )
    valid = tf.logical_and(tf.reduce_any(positive_mask, 1), tf.reduce_any(negative_mask, 1))
    losses = _hinge(hardest_positive - closest_negative, margin, soft)
    return _safe_mean(losses, valid), _safe_mean(tf.cast(losses > 0, losses.dtype), valid)


def batch_all(labels, embeddings, margin=0.2, squared=False, soft=False):
    """Sums hinge terms over negatives with sorted prefix sums instead of a [B, B, B] tensor."""
    if soft:
        raise ValueError("batch_all supports the hard margin only")
    distances = pairwise_distances(embeddings, squared)
    positive_mask, negative_mask = _masks(labels)
    sorted_negatives = _sorted_negatives(distances, negative_mask)
    prefix_sums = tf.cumsum(
        tf.where(tf.math.is_finite(sorted_negatives), sorted_negatives, 0.0), axis=1
    )
    prefix_sums = tf.pad(prefix_sums, [[0, 0], [1, 0]])
    # Negatives with d(a, n) < d(a, p) + margin are the active ones for the pair (a, p).
    thresholds = distances + margin
    active = tf.searchsorted(sorted_negatives, thresholds, side="left")
    active_sum = tf.gather(prefix_sums, active, batch_dims=1)
    pair_losses = tf.cast(active, distances.dtype) * thresholds - active_sum
    positive = tf.cast(positive_mask, distances.dtype)
    active_count = tf.reduce_sum(tf.cast(active, distances.dtype) * positive)
    valid_count = tf.reduce_sum(
        positive * tf.reduce_sum(tf.cast(negative_mask, distances.dtype), axis=1, keepdims=True)
    )
    loss = tf.reduce_sum(pair_losses * positive) / tf.maximum(active_count, 1.0)
    return loss, active_count / tf.maximum(valid_count, 1.0)


def random_triplets(anchor, positive, negative, margin=0.2, soft=False):
    """The notebook's triplet loss on explicit triplets; returns (loss, active_fraction)."""
    positive_distances = tf.reduce_mean(tf.square(anchor - positive), axis=-1)
    negative_distances = tf.reduce_mean(tf.square(anchor - negative), axis=-1)
    losses = _hinge(positive_distances - negative_distances, margin, soft)
    return tf.reduce_mean(losses), tf.reduce_mean(tf.cast(losses > 0, losses.dtype))


def get(strategy: str):
    """The online mining loss of a strategy (`random` has explicit triplets: random_triplets)."""
    try:
        return {"semi_hard": semi_hard, "batch_hard": batch_hard, "batch_all": batch_all}[strategy]
    except KeyError:
        raise ValueError(
            f"unknown triplet strategy {strategy!r}; choose from {STRATEGIES}"
        ) from None
