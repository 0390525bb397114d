"""EmbeddingReport: embeds the eval split with the trained model and draws what it learned.

Writes ROC curve, pair-distance histograms with the FAR threshold, a 2-D projection, the worst
identities by Precision@1, and TensorBoard projector files (vectors, labels, sprite).
"""

import json
import os
import tempfile

import numpy as np
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts
from tfx.types.artifact import Artifact
from tfx.utils import path_utils

from components import example_io, files
from components.evaluator import embedding_metrics as em
from components.reporting import figures, projector
from components.reporting.settings import ReportSettings

FAR_TARGET = 1e-3
DEFAULT_REPORT_EXAMPLES = ReportSettings().report_examples


class EmbeddingReportArtifact(Artifact):
    """A folder of PNG figures, figures.json and a `projector/` folder."""

    TYPE_NAME = "siamese_tfx.EmbeddingReport"  # KFP v2 needs "<namespace>.<Name>".


def per_identity_precision_at_one(embeddings, labels, block_size: int = 1024):
    """Each identity's share of queries whose nearest other item shares it (ties by index).

    For the figure only; the gated Precision@1 (with exact tie handling) is in
    components.evaluator.embedding_metrics.
    """
    embeddings = np.asarray(embeddings, dtype=np.float64)
    squared = np.einsum("ij,ij->i", embeddings, embeddings)
    hits = np.empty(len(labels), dtype=bool)
    for start in range(0, len(labels), block_size):
        rows = np.arange(start, min(start + block_size, len(labels)))
        distances = squared[rows, None] - 2 * embeddings[rows] @ embeddings.T + squared[None]
        distances[np.arange(len(rows)), rows] = np.inf
        hits[rows] = labels[np.argmin(distances, axis=1)] == labels[rows]
    identities, codes, counts = np.unique(labels, return_inverse=True, return_counts=True)
    valid = counts[codes] >= 2
    precision = np.bincount(codes[valid], weights=hits[valid], minlength=len(identities))
    has_queries = counts >= 2
    return identities[has_queries], (precision[has_queries] / counts[has_queries])


def write_report(embeddings, labels, images, directory: str, far_target: float = FAR_TARGET):
    """All figures and projector files for one model's eval embeddings."""
    os.makedirs(directory, exist_ok=True)
    first, second = em.verification_pairs(embeddings, labels)
    distances = em.pair_distances(embeddings, first, second)
    same = labels[first] == labels[second]
    positive, negative = distances[same], distances[~same]
    thresholds, val, far = em.roc_points(positive, negative)
    val_at_target, threshold = em.val_at_far(positive, negative, far_target)
    auc = em.roc_auc(positive, negative)
    identities, precision = per_identity_precision_at_one(embeddings, labels)
    figures.roc_curve(np.r_[0, far], np.r_[0, val], auc, os.path.join(directory, "roc_curve.png"))
    figures.distance_histograms(
        positive,
        negative,
        threshold if np.isfinite(threshold) else 0.0,
        os.path.join(directory, "pair_distances.png"),
        far_target,
    )
    figures.embedding_projection(
        embeddings, labels, os.path.join(directory, "projection.png"), "Eval embeddings (PCA)"
    )
    figures.per_identity_precision(
        identities, precision, os.path.join(directory, "worst_identities.png")
    )
    projector.write_projector(
        os.path.join(directory, "projector"), embeddings, labels, images or None
    )
    facts = {
        "examples": int(len(labels)),
        "roc_auc": auc,
        "far_target": far_target,
        "val_at_far": val_at_target,
        "threshold_at_far": threshold,
        "worst_identities": {
            str(i): float(p)
            for i, p in sorted(zip(identities, precision, strict=True), key=lambda x: x[1])[:20]
        },
    }
    with open(os.path.join(directory, "figures.json"), "w") as f:
        json.dump(facts, f, indent=2)
    return facts


@component
def EmbeddingReport(  # noqa: N802 (TFX component)
    model: InputArtifact[standard_artifacts.Model],
    examples: InputArtifact[standard_artifacts.Examples],
    report: OutputArtifact[EmbeddingReportArtifact],
    max_examples: Parameter[int] = DEFAULT_REPORT_EXAMPLES,
):
    """Figures and projector files of the candidate model on (up to) the eval split."""
    records = example_io.read_split(examples.uri, "eval", max_examples)
    embeddings, labels, images = example_io.embed_examples(
        path_utils.serving_model_path(model.uri), records, thumbnails=max_examples
    )
    with tempfile.TemporaryDirectory() as local:  # Matplotlib writes local files only.
        write_report(embeddings, labels, images, local)
        files.copy_tree(local, report.uri)
