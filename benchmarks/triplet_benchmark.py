"""Benchmark: the original notebook's method against our default, on the same data, in one process.

    .venv/bin/python -m benchmarks.triplet_benchmark [--data DIR] [--methods notebook,default]
        [--set NAME=VALUE ...] [--json PATH]

Data: an MNIST-format folder (train-/t10k- IDX files, gzipped or not), Fashion-MNIST by default.
Images are scaled to [0, 1] then standardised with the train split's pixel mean and standard
deviation, as preprocessing_fn does. Training goes straight through components.trainer.fit.fit
(the Trainer's own model, loss and input code) on in-memory tf.data streams, without TFX.

Methods:
  notebook  --model mlp --triplet-strategy random with the notebook's hyperparameters
            (Adam 1e-3 constant, 1,024 triplets a batch, 10 epochs x 58 steps, margin 0.2)
  default   HParams() defaults (what `siamese-tfx run` trains), changed by --set NAME=VALUE
  pixels    no training: the standardised pixels themselves (a reference row)

Metrics (components.evaluator.embedding_metrics unless said otherwise):
  Precision@1      queries = test, gallery = train (benchmarks.retrieval)
  MAP@R, R-prec.   test set, leave-one-out (Musgrave et al. 2020)
  VAL@FAR=1e-3     test pairs: every positive pair and a seeded sample of negative pairs
                   (2 M pairs in all; see embedding_metrics.verification_pairs)
  train s          wall time of the training call (graph building included, no evaluation)
  images/s         images embedded by training steps / training time of the epochs
                   (3 per triplet for the notebook's method)
"""

import argparse
import datetime
import json
import os
import platform
import sys
import time

import numpy as np
import tensorflow as tf
from absl import logging

import components  # noqa: F401  (sets TF_USE_LEGACY_KERAS before tf.keras loads)
from benchmarks import retrieval
from components.evaluator import embedding_metrics
from components.example_gen import idx
from components.trainer import data, fit, validation
from components.trainer.hparams import HParams

DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"
FAR = 1e-3
MAX_PAIRS = 2_000_000

NOTEBOOK = dict(
    model="mlp",
    embedding_dim=64,
    triplet_strategy="random",
    margin=0.2,
    triplets_per_batch=1024,
    epochs=10,
    steps_per_epoch=58,
    learning_rate=1e-3,
    lr_schedule="constant",
    warmup_epochs=0.0,
    augment=False,
    early_stopping_patience=0,
    validation_fraction=0.0,  # The notebook trains on every train image, keeps the last epoch.
    stop_when_satisfied=False,  # ... and runs all its epochs.
    mixed_precision="off",
)


def find_idx(folder: str, prefix: str, kind: str) -> str:
    for name in (f"{prefix}-{kind}", f"{prefix}-{kind}.gz"):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"{folder}: no {prefix}-{kind}[.gz]")


def load_split(folder: str, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images [N, H, W] and int64 labels [N] of one IDX split."""
    images_path = find_idx(folder, prefix, "images-idx3-ubyte")
    labels_path = find_idx(folder, prefix, "labels-idx1-ubyte")
    count = idx.read_header(images_path, idx.IMAGES_NDIM)[0]
    images = idx.read_records(images_path, idx.IMAGES_NDIM, 0, count)
    labels = idx.read_records(labels_path, idx.LABELS_NDIM, 0, count)
    return images, labels.reshape(-1).astype(np.int64)


def load(folder: str):
    """Standardised float32 images [N, H, W, 1] and labels, train and test."""
    train_images, train_labels = load_split(folder, "train")
    test_images, test_labels = load_split(folder, "t10k")
    train = train_images.astype(np.float32)[..., None] / 255.0
    test = test_images.astype(np.float32)[..., None] / 255.0
    mean, std = train.mean(), train.std()
    return (
        (train - mean) / max(std, 1e-6),
        train_labels,
        (test - mean) / max(std, 1e-6),
        test_labels,
    )


def embed(network, images: np.ndarray) -> np.ndarray:
    return network.predict(images, batch_size=1024, verbose=0).astype(np.float32)


def evaluate(train_emb, train_labels, test_emb, test_labels) -> dict:
    retrieval_scores = embedding_metrics.retrieval_metrics(test_emb, test_labels, recall_at_k=(1,))
    verification = embedding_metrics.verification_metrics(
        test_emb, test_labels, max_pairs=MAX_PAIRS, far_targets=(FAR,)
    )
    return {
        "precision_at_1": retrieval.precision_at_1(test_emb, test_labels, train_emb, train_labels),
        "map_at_r": retrieval_scores[embedding_metrics.MAP_AT_R],
        "r_precision": retrieval_scores[embedding_metrics.R_PRECISION],
        "val_at_far": verification[embedding_metrics.val_name(FAR)],
    }


def train_method(hparams: HParams, train_x, train_y) -> fit.TrainResult:
    """fit.fit as the Trainer calls it: the same validation slice held back (if any)."""
    vocabulary = [str(i) for i in range(int(train_y.max()) + 1)]
    counts = dict(zip(*np.unique(train_y.astype(str), return_counts=True), strict=True))
    trainable = data.trainable_mask({k: int(v) for k, v in counts.items()}, vocabulary)
    per_label_id = np.array([int(counts.get(name, 0)) for name in vocabulary])
    examples = tf.data.Dataset.from_tensor_slices((train_x, train_y))
    split = validation.hold_out_validation(
        hparams, examples, examples, vocabulary, per_label_id, trainable
    )
    return fit.fit(hparams, split.train, split.validation, split.trainable, split.train_images)


def parse_value(text: str):
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_overrides(items: list[str]) -> dict:
    """NAME=VALUE strings (as --set takes them) -> {name: value}."""
    config = {}
    for item in items:
        name, _, value = item.partition("=")
        config[name.strip().replace("-", "_")] = parse_value(value.strip())
    return config


def default_hparams(overrides: list[str], image_shape) -> HParams:
    config = {"image_size": image_shape[0], "channels": image_shape[2]}
    return HParams.from_config({**config, **parse_overrides(overrides)})


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def format_table(rows: list[dict]) -> str:
    header = (
        "| method | Precision@1 | MAP@R | R-precision | VAL@FAR=1e-3 | train time (s) | images/s |"
    )
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        seconds = f"{row['train_seconds']:.0f}" if row.get("train_seconds") is not None else "-"
        speed = f"{row['images_per_second']:,.0f}" if row.get("images_per_second") else "-"
        lines.append(
            f"| {row['method']} | {row['precision_at_1']:.3f} | {row['map_at_r']:.3f} | "
            f"{row['r_precision']:.3f} | {row['val_at_far']:.3f} | {seconds} | {speed} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=DEFAULT_DATA, help="MNIST-format folder")
    parser.add_argument(
        "--methods", default="pixels,notebook,default", help="comma-separated, in order"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a default hyperparameter (repeatable), e.g. --set epochs=4",
    )
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    logging.set_verbosity(logging.INFO)

    start_load = load_average()
    train_x, train_y, test_x, test_y = load(args.data)
    print(
        f"data {args.data}: train {train_x.shape}, test {test_x.shape}, "
        f"{len(np.unique(train_y))} identities",
        flush=True,
    )
    rows = []
    for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
        row = {"method": method}
        if method == "pixels":
            train_emb, test_emb = train_x.reshape(len(train_x), -1), test_x.reshape(len(test_x), -1)
        else:
            if method == "notebook":
                hparams = HParams.from_config(
                    {**NOTEBOOK, "image_size": train_x.shape[1], "channels": 1}
                )
            elif method == "default":
                hparams = default_hparams(args.set, train_x.shape[1:])
            else:
                parser.error(f"unknown method {method!r}")
            print(f"\n== {method}: {hparams}", flush=True)
            result = train_method(hparams, train_x, train_y)
            row.update(
                hparams=hparams.to_config(),
                epochs_run=result.epochs_run,
                train_seconds=result.wall_seconds,
                images_per_second=result.images_per_second,
            )
            train_emb = embed(result.embedding_network, train_x)
            test_emb = embed(result.embedding_network, test_x)
        started = time.perf_counter()
        row.update(evaluate(train_emb, train_y, test_emb, test_y))
        print(f"{method}: {row} (metrics {time.perf_counter() - started:.0f} s)", flush=True)
        rows.append(row)

    table = format_table(rows)
    context = (
        f"{datetime.datetime.now().isoformat(timespec='minutes')}, {cpu_name()}, "
        f"{os.cpu_count()} cores, TensorFlow {tf.__version__}; "
        f"load average (1/5/15 min) at start {start_load}, at end {load_average()}"
    )
    print("\n" + table + "\n\n" + context)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "context": context, "argv": sys.argv[1:]}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
