"""Matplotlib figures of embeddings, training progress and verification, saved as PNG files."""

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

MAX_POINTS = 3000  # Scatter plots sample this many embeddings at most.
MAX_LEGEND = 20


def pca_2d(embeddings: np.ndarray) -> np.ndarray:
    """Projects embeddings onto their first two principal components."""
    centred = embeddings - embeddings.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    return centred @ components[:2].T


def _sample(n: int, limit: int, seed: int = 0) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


def _scatter_by_identity(ax, points, labels):
    identities = np.unique(labels)
    colours = plt.get_cmap("tab20" if len(identities) > 10 else "tab10")
    for i, identity in enumerate(identities):
        mask = labels == identity
        label = str(identity) if len(identities) <= MAX_LEGEND else None
        ax.scatter(
            points[mask, 0],
            points[mask, 1],
            s=6,
            alpha=0.7,
            color=colours(i % colours.N),
            label=label,
        )
    if len(identities) <= MAX_LEGEND:
        ax.legend(markerscale=3, fontsize=7, loc="best", title="identity")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")


def save(fig, path: str) -> str:
    """Saves and closes a figure; remote paths (gs://, s3://) go through tf.io.gfile."""
    fig.tight_layout()
    if "://" not in path:
        fig.savefig(path, dpi=90)
    else:
        import tensorflow as tf

        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90)
        with tf.io.gfile.GFile(path, "wb") as f:
            f.write(buffer.getvalue())
    plt.close(fig)
    return path


def embedding_projection(embeddings, labels, path: str, title: str) -> str:
    """2-D PCA of embeddings coloured by identity."""
    keep = _sample(len(labels), MAX_POINTS)
    fig, ax = plt.subplots(figsize=(6, 5))
    _scatter_by_identity(ax, pca_2d(np.asarray(embeddings)[keep]), np.asarray(labels)[keep])
    ax.set_title(title)
    return save(fig, path)


def training_progress(
    embeddings, labels, history: dict, path: str, epoch: int, sample: str = "eval"
) -> str:
    """The notebook's per-epoch picture: `sample` (eval or validation) embeddings in 2-D beside
    the loss curves so far."""
    keep = _sample(len(labels), MAX_POINTS)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    _scatter_by_identity(left, pca_2d(np.asarray(embeddings)[keep]), np.asarray(labels)[keep])
    left.set_title(f"{sample.capitalize()} embeddings after epoch {epoch} (PCA)")
    for name, values in history.items():
        right.plot(range(1, len(values) + 1), values, marker="o", label=name)
    right.set_xlabel("epoch")
    right.set_title("Loss")
    right.legend()
    return save(fig, path)


def triplet_samples(anchors, positives, negatives, path: str) -> str:
    """Rows of anchor / positive / negative images side by side."""
    rows = len(anchors)
    fig, axes = plt.subplots(rows, 3, figsize=(4.5, 1.5 * rows), squeeze=False)
    for row, images in enumerate(zip(anchors, positives, negatives, strict=True)):
        for col, (image, name) in enumerate(
            zip(images, ("anchor", "positive", "negative"), strict=True)
        ):
            ax = axes[row, col]
            image = np.asarray(image, dtype=np.float32)
            image = (image - image.min()) / max(float(image.max() - image.min()), 1e-6)
            ax.imshow(image.squeeze(), cmap="gray" if image.shape[-1] == 1 else None)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(name, fontsize=9)
    return save(fig, path)


def roc_curve(false_accept_rates, true_accept_rates, auc: float, path: str) -> str:
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.plot(false_accept_rates, true_accept_rates, label=f"AUC {auc:.4f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    ax.set_xscale("symlog", linthresh=1e-3)
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.set_title("Verification ROC (eval pairs)")
    ax.legend(loc="lower right")
    return save(fig, path)


def distance_histograms(positive, negative, threshold: float, path: str, far: float) -> str:
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(
        0.0, max(float(np.max(negative, initial=0)), float(np.max(positive, initial=0)), 1e-6), 60
    )
    ax.hist(negative, bins=bins, alpha=0.6, density=True, label="different identity")
    ax.hist(positive, bins=bins, alpha=0.6, density=True, label="same identity")
    ax.axvline(threshold, color="black", linestyle="--", label=f"threshold at FAR={far:g}")
    ax.set_xlabel("embedding distance")
    ax.set_ylabel("density")
    ax.set_title("Pair distances")
    ax.legend()
    return save(fig, path)


def per_identity_precision(identities, precisions, path: str, worst: int = 20) -> str:
    """Horizontal bars of Precision@1 for the identities the model retrieves worst."""
    order = np.argsort(precisions, kind="stable")[:worst]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(order) + 1.2))
    ax.barh([str(identities[i]) for i in order], [precisions[i] for i in order])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("Precision@1")
    ax.set_title(f"Worst {len(order)} identities")
    return save(fig, path)
