"""Timing of the Evaluator's embedding metrics (components.evaluator.embedding_metrics).

    .venv/bin/python -m benchmarks.evaluator_metrics [--n 10000] [--dim 64] [--repeat 1]

Prints wall-clock seconds of the retrieval and verification parts and of the whole
`embedding_metrics` call with default options (recall@1/5/10, 1,000,000 pairs, FAR 1e-3 and
1e-2, 1,024-query blocks) for clustered random embeddings: many small identities
(face-like), few large ones (MNIST-like) and a collapsed embedding (everything tied, the
slowest path). Figures only, no pass/fail.
"""

import argparse
import time

import numpy as np

from components.evaluator import embedding_metrics as em


def _dataset(kind: str, n: int, dim: int, rng) -> tuple[np.ndarray, np.ndarray]:
    if kind == "collapsed":
        return np.ones((n, dim), np.float32), rng.integers(0, max(1, n // 10), size=n)
    identities = max(1, n // 10) if kind == "small_identities" else 10
    labels = rng.integers(0, identities, size=n)
    centres = rng.normal(size=(identities, dim))
    emb = centres[labels] + 1.2 * rng.normal(size=(n, dim))  # P@1 well below 1
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return emb.astype(np.float32), labels


def _best_of(repeat: int, fn) -> tuple[float, dict]:
    best, result = float("inf"), {}
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'data':<18}{'retrieval s':>12}{'verification s':>16}{'all s':>8}  P@1 / MAP@R / AUC")
    for kind in ("small_identities", "large_identities", "collapsed"):
        emb, labels = _dataset(kind, args.n, args.dim, rng)
        t_ret, _ = _best_of(args.repeat, lambda e=emb, y=labels: em.retrieval_metrics(e, y))
        t_ver, _ = _best_of(args.repeat, lambda e=emb, y=labels: em.verification_metrics(e, y))
        t_all, got = _best_of(args.repeat, lambda e=emb, y=labels: em.embedding_metrics(e, y))
        print(
            f"{kind:<18}{t_ret:>12.2f}{t_ver:>16.2f}{t_all:>8.2f}  "
            f"{got['precision_at_1']:.3f} / {got['map_at_r']:.3f} / {got['roc_auc']:.3f}"
        )
    print(f"({args.n} x {args.dim} float32 embeddings, best of {args.repeat})")


if __name__ == "__main__":
    main()
