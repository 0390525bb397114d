"""The margin loss with distance-weighted negative sampling (Wu et al., ICCV 2017), a pure
function of the batch and the uniform draws of its sampling.

Wu, Manmatha, Smola, Krähenbühl, "Sampling Matters in Deep Embedding Learning". On the unit
sphere in D dimensions the distance d between two random points has the density
q(d) ∝ d^(D-2) (1 - d^2/4)^((D-3)/2); the paper's distance weighted sampling draws each
anchor's negatives with weight 1/q(d), so that they spread over all distances instead of piling
up near sqrt(2). As in the authors' code (the MXNet embedding_learning example), d is clipped
below at `cutoff` 0.5 (bounding the weight of the closest negatives) and negatives at
`nonzero_loss_cutoff` 1.4 or farther get weight 0 (with beta + alpha = 1.4 their loss would be
0); an anchor with no negative nearer than that draws uniformly from all its negatives.

Every (anchor, positive) pair of the batch is paired with one negative drawn for its anchor, and
each pair adds the paper's margin based loss relu(alpha + y (D - beta)), y = +1 for the
positive, -1 for the negative, with alpha 0.2 and beta 1.2 as in the paper (which learns beta,
starting at 1.2; here it is fixed). The sum is divided by the number of non-zero terms, as in
the authors' code. `active_fraction` is the share of the terms that are non-zero.

The draw is an inverse-CDF lookup of `uniforms` [B, B] in [0, 1): the one at (a, p) picks the
negative of pair (a, p), so a test reproduces the sampling by passing the same draws.
"""

import tensorflow as tf

from components.trainer.triplet_loss import pairwise_distances

ALPHA, BETA = 0.2, 1.2
CUTOFF, NONZERO_LOSS_CUTOFF = 0.5, 1.4


def _pair_masks(labels: tf.Tensor):
    """[B, B] positive pairs (same identity, not the anchor itself) and negative pairs."""
    labels = tf.reshape(labels, [-1])
    same = tf.equal(labels[:, None], labels[None, :])
    not_self = tf.logical_not(tf.eye(tf.shape(labels)[0], dtype=tf.bool))
    return tf.logical_and(same, not_self), tf.logical_not(same)


def negative_weights(
    distances, negative_mask, dim: int, cutoff=CUTOFF, nonzero_loss_cutoff=NONZERO_LOSS_CUTOFF
) -> tf.Tensor:
    """[B, B] probabilities of drawing each negative for each anchor (rows sum to 1, or to 0
    for an anchor without negatives): 1/q(d) on the clipped distance, 0 from
    `nonzero_loss_cutoff` on, uniform over the negatives when none is nearer than that."""
    dtype = distances.dtype
    clipped = tf.maximum(distances, cutoff)
    # log(1/q(d)); at d = 2 the second log is -inf, but such a negative is never a candidate.
    log_weights = (2.0 - dim) * tf.math.log(clipped) - (dim - 3.0) / 2.0 * tf.math.log(
        tf.maximum(1.0 - 0.25 * tf.square(clipped), 0.0)
    )
    candidates = tf.logical_and(negative_mask, clipped < nonzero_loss_cutoff)
    has_candidate = tf.reduce_any(candidates, axis=1, keepdims=True)
    drawn_from = tf.where(has_candidate, candidates, negative_mask)
    log_weights = tf.where(has_candidate, log_weights, tf.zeros_like(log_weights))
    log_weights = tf.where(drawn_from, log_weights, tf.constant(-float("inf"), dtype))
    largest = tf.reduce_max(log_weights, axis=1, keepdims=True)
    largest = tf.where(tf.math.is_finite(largest), largest, tf.zeros_like(largest))
    weights = tf.where(drawn_from, tf.exp(log_weights - largest), tf.zeros_like(log_weights))
    total = tf.reduce_sum(weights, axis=1, keepdims=True)
    return weights / tf.where(total > 0, total, tf.ones_like(total))


def sample_negatives(weights, uniforms) -> tf.Tensor:
    """[B, B] int32: for each (anchor a, slot j), the negative whose share of row a's
    cumulative weights holds uniforms[a, j] (the first index whose cumulative weight exceeds
    it, or the row's last drawable index should rounding carry it past the end)."""
    count = tf.shape(weights)[1]
    cumulative = tf.cumsum(weights, axis=1)
    drawn = tf.searchsorted(cumulative, uniforms * cumulative[:, -1:], side="right")
    drawable = tf.cast(weights > 0, tf.int32)
    last = count - 1 - tf.argmax(tf.reverse(drawable, axis=[1]), axis=1, output_type=tf.int32)
    return tf.minimum(drawn, last[:, None])


def margin_loss(
    labels,
    embeddings,
    uniforms,
    alpha=ALPHA,
    beta=BETA,
    cutoff=CUTOFF,
    nonzero_loss_cutoff=NONZERO_LOSS_CUTOFF,
) -> tuple[tf.Tensor, tf.Tensor]:
    """(loss, active_fraction) of labels [B], embeddings [B, D] (L2-normalised here) and
    uniforms [B, B] in [0, 1) (the draws of the negative sampling)."""
    embeddings = tf.math.l2_normalize(embeddings, axis=1)
    distances = pairwise_distances(embeddings)
    positive_mask, negative_mask = _pair_masks(labels)
    dim = embeddings.shape[-1]
    weights = negative_weights(
        tf.stop_gradient(distances), negative_mask, dim, cutoff, nonzero_loss_cutoff
    )
    negatives = sample_negatives(weights, tf.cast(uniforms, distances.dtype))
    negative_distances = tf.gather(distances, negatives, batch_dims=1)
    has_negative = tf.reduce_any(negative_mask, axis=1, keepdims=True)
    valid = tf.cast(tf.logical_and(positive_mask, has_negative), distances.dtype)
    positive_terms = tf.nn.relu(alpha + distances - beta) * valid
    negative_terms = tf.nn.relu(alpha + beta - negative_distances) * valid
    nonzero = tf.reduce_sum(tf.cast(positive_terms > 0, distances.dtype)) + tf.reduce_sum(
        tf.cast(negative_terms > 0, distances.dtype)
    )
    loss = tf.reduce_sum(positive_terms + negative_terms) / tf.maximum(nonzero, 1.0)
    return loss, nonzero / tf.maximum(2.0 * tf.reduce_sum(valid), 1.0)
