"""The one retrieval metric the benchmark needs that components.evaluator.embedding_metrics
(leave-one-out within one set) does not give: Precision@1 of queries against a separate gallery.
"""

import numpy as np


def precision_at_1(
    queries: np.ndarray,
    query_labels: np.ndarray,
    gallery: np.ndarray,
    gallery_labels: np.ndarray,
    block_size: int = 1024,
) -> float:
    """Share of queries whose nearest gallery item (Euclidean) has the query's label.

    Blockwise (memory block_size x gallery size) and vectorised; ties go to the lowest index.
    """
    queries = np.asarray(queries, np.float32)
    gallery = np.asarray(gallery, np.float32)
    query_labels, gallery_labels = np.asarray(query_labels), np.asarray(gallery_labels)
    if len(queries) != len(query_labels) or len(gallery) != len(gallery_labels):
        raise ValueError("one label per query and per gallery item")
    if not len(queries):
        return float("nan")
    gallery_norms = np.einsum("ij,ij->i", gallery, gallery)
    hits = 0
    for start in range(0, len(queries), block_size):
        block = queries[start : start + block_size]
        # ||q - g||^2 without the per-query constant ||q||^2.
        distances = gallery_norms[None, :] - 2.0 * (block @ gallery.T)
        nearest = np.argmin(distances, axis=1)
        hits += int(np.sum(gallery_labels[nearest] == query_labels[start : start + block_size]))
    return hits / len(queries)
