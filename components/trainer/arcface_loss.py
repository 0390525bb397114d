"""The ArcFace loss (Deng et al., CVPR 2019): softmax over class proxies with an additive
angular margin, a pure function of the batch and the class weights.

Deng, Guo, Xue, Zafeiriou, "ArcFace: Additive Angular Margin Loss for Deep Face Recognition".
Each identity c has a proxy, a row W_c of the class weights [C, D] (trained with the network,
dropped at export). With embeddings x and proxies both L2-normalised, cos(theta_c) = W_c . x;
the true identity's angle is widened by the margin m before a softmax at scale s:

  L = -1/B sum_i log( e^(s cos(theta_yi + m)) /
                      (e^(s cos(theta_yi + m)) + sum_{c != yi} e^(s cos(theta_c))) )

Defaults s = 64 and m = 0.5, the paper's. Where theta + m would pass pi (and cos(theta + m)
rise again), the target logit is s (cos(theta) - m sin(m)), as in the authors' insightface
code. `active_fraction` is the share of images the margin still misclassifies: their widened
target cosine is not above every other identity's cosine. Unlike the triplet losses' share, it
reaching 0 does not mean the loss is 0: a softmax always has a gradient.
"""

import math

import tensorflow as tf

SCALE, MARGIN = 64.0, 0.5
# Cosines are kept this far inside [-1, 1]: sin(theta) = sqrt(1 - cos^2) has no derivative at 1.
COSINE_LIMIT = 1e-7


def arcface(
    labels, embeddings, class_weights, scale=SCALE, margin=MARGIN
) -> tuple[tf.Tensor, tf.Tensor]:
    """(loss, active_fraction) of labels [B] (ids in [0, C)), embeddings [B, D] and
    class_weights [C, D], both L2-normalised here."""
    labels = tf.reshape(labels, [-1])
    embeddings = tf.math.l2_normalize(embeddings, axis=1)
    proxies = tf.math.l2_normalize(class_weights, axis=1)
    limit = 1.0 - COSINE_LIMIT
    cosines = tf.clip_by_value(tf.matmul(embeddings, proxies, transpose_b=True), -limit, limit)
    target = tf.gather(cosines, labels, axis=1, batch_dims=1)
    widened = target * math.cos(margin) - tf.sqrt(1.0 - tf.square(target)) * math.sin(margin)
    widened = tf.where(
        target > math.cos(math.pi - margin), widened, target - margin * math.sin(margin)
    )
    is_target = tf.one_hot(labels, tf.shape(cosines)[1], dtype=cosines.dtype)
    logits = scale * (cosines + is_target * (widened - target)[:, None])
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    other = tf.where(is_target > 0, tf.constant(-float("inf"), cosines.dtype), cosines)
    misclassified = widened <= tf.reduce_max(other, axis=1)
    return tf.reduce_mean(losses), tf.reduce_mean(tf.cast(misclassified, losses.dtype))
