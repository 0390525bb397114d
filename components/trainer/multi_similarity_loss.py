"""The multi-similarity loss (Wang et al., CVPR 2019) over a P x K batch, a pure function.

Wang, Han, Huang, Dong, Scott, "Multi-Similarity Loss with General Pair Weighting for Deep
Metric Learning". With S the cosine similarity of two embeddings, each anchor i first mines its
pairs (the paper's pair mining), then weights them softly through a log-sum-exp (its MS loss):

  negatives N_i: S_in > min over positives p of S_ip - epsilon
  positives P_i: S_ip < max over negatives n of S_in + epsilon
  L = 1/B sum_i [ 1/alpha log(1 + sum_{p in P_i} exp(-alpha (S_ip - base)))
                + 1/beta  log(1 + sum_{n in N_i} exp( beta (S_in - base))) ]

The mining only chooses pairs (no gradient flows through the choice); the log-sum-exp gives
each chosen pair the paper's weight (its pair weighting). Defaults: alpha 2, beta 50, epsilon
0.1 as in the paper's implementation details; base (the paper's lambda) 0.5 as in the authors'
code (MalongTech/research-ms-loss) and pytorch-metric-learning, where the paper's text says 1.
An anchor with nothing mined adds 0 but still counts in the 1/B. `active_fraction` is the share
of the batch's pairs (an anchor with another image) that the mining keeps: 0 exactly when the
loss and its gradient are 0.
"""

import tensorflow as tf

ALPHA, BETA, BASE, EPSILON = 2.0, 50.0, 0.5, 0.1


def _pair_masks(labels: tf.Tensor):
    """[B, B] positive pairs (same identity, not the anchor itself) and negative pairs."""
    labels = tf.reshape(labels, [-1])
    same = tf.equal(labels[:, None], labels[None, :])
    not_self = tf.logical_not(tf.eye(tf.shape(labels)[0], dtype=tf.bool))
    return tf.logical_and(same, not_self), tf.logical_not(same)


def _log1p_sum_exp(exponents: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Per row, log(1 + sum of exp(exponents) over `mask`), stably."""
    masked = tf.where(mask, exponents, tf.constant(-float("inf"), exponents.dtype))
    with_one = tf.concat([tf.zeros_like(masked[:, :1]), masked], axis=1)
    return tf.reduce_logsumexp(with_one, axis=1)


def mined_pairs(similarities, positive_mask, negative_mask, epsilon=EPSILON):
    """The pairs each anchor keeps, the paper's mining: (positive_pairs, negatives), [B, B]."""
    dtype = similarities.dtype
    inf = tf.constant(float("inf"), dtype)
    hardest_negative = tf.reduce_max(tf.where(negative_mask, similarities, -inf), 1, keepdims=True)
    hardest_positive = tf.reduce_min(tf.where(positive_mask, similarities, inf), 1, keepdims=True)
    positive_pairs = tf.logical_and(positive_mask, similarities - epsilon < hardest_negative)
    negatives = tf.logical_and(negative_mask, similarities + epsilon > hardest_positive)
    return positive_pairs, negatives


def multi_similarity(
    labels, embeddings, alpha=ALPHA, beta=BETA, base=BASE, epsilon=EPSILON
) -> tuple[tf.Tensor, tf.Tensor]:
    """(loss, active_fraction) of labels [B] and embeddings [B, D] (L2-normalised here)."""
    embeddings = tf.math.l2_normalize(embeddings, axis=1)
    similarities = tf.matmul(embeddings, embeddings, transpose_b=True)
    positive_mask, negative_mask = _pair_masks(labels)
    positive_pairs, negatives = mined_pairs(
        tf.stop_gradient(similarities), positive_mask, negative_mask, epsilon
    )
    positive_terms = _log1p_sum_exp(-alpha * (similarities - base), positive_pairs) / alpha
    negative_terms = _log1p_sum_exp(beta * (similarities - base), negatives) / beta
    loss = tf.reduce_mean(positive_terms + negative_terms)

    def count(mask):
        return tf.reduce_sum(tf.cast(mask, similarities.dtype))

    mined = count(positive_pairs) + count(negatives)
    pairs = count(positive_mask) + count(negative_mask)
    return loss, mined / tf.maximum(pairs, 1.0)
