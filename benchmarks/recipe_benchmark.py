"""The recipe benchmark: four recipes on six datasets, the numbers in benchmarks/RESULTS.md.

    .venv/bin/python -m benchmarks.recipe_benchmark [--datasets a,b] [--methods a,b]
        [--image-size N] [--set NAME=VALUE ...] [--plain-set NAME=VALUE ...] [--label NAME]
        [--json PATH]
    make bench BENCH=recipe BENCH_ARGS="--datasets yale-faces"

Datasets (benchmarks/datasets.py): fashion-mnist, fashion-mnist-5k, fashion-mnist-open, digits,
yale-faces. Methods:
  pixels    no training: the standardised pixels (the no-learning reference)
  notebook  the original notebook's method (benchmarks.triplet_benchmark.NOTEBOOK)
  plain     the plain reference: 2 convs (32, 64) + max pool + dense 128 + dense 64,
            L2-normalised, no batch norm; semi-hard triplets, margin 0.2, Euclidean distance,
            10 x 25 class-balanced batches, Adam 1e-3 constant, 30 epochs, last epoch kept
            (--plain-set NAME=VALUE changes it, e.g. epochs=10 to cap a long run: the table
            then says so in its note column)
  default   HParams() defaults, validation slice and model selection included: what
            `siamese-tfx run` trains (changed with --set NAME=VALUE; --label names that row)
Images are at --image-size (default 28, the pipeline's), decoded as Transform decodes them.
Training runs components.trainer.fit.fit on in-memory data (no TFX), as the Trainer does.

Metrics (components.evaluator.embedding_metrics): P@1 (gallery protocol: test queries against
the train gallery; open protocol: leave-one-out within the test identities), MAP@R and EER
leave-one-out on the test split, VAL@FAR=1e-3 and 1e-2, and training time. This is slow (tens
of minutes on 2 cores for all of it): run it on a quiet machine, not in tests.
"""

import argparse
import dataclasses
import json
import sys

import numpy as np
from absl import logging

import components  # noqa: F401  (sets TF_USE_LEGACY_KERAS before tf.keras loads)
from benchmarks import datasets, retrieval
from benchmarks import triplet_benchmark as single
from components.evaluator import embedding_metrics as em
from components.trainer.hparams import HParams

METHODS = ("pixels", "notebook", "plain", "default")
FARS = (1e-3, 1e-2)
PLAIN_EPOCHS = 30
PLAIN = dict(
    model="plain",
    width=32,
    embedding_dim=64,
    triplet_strategy="semi_hard",
    margin=0.2,
    squared_distance=False,
    identities_per_batch=10,
    images_per_identity=25,
    epochs=PLAIN_EPOCHS,
    min_training_steps=0,  # 30 passes, whatever their length
    learning_rate=1e-3,
    lr_schedule="constant",
    warmup_epochs=0.0,
    augment=False,
    validation_fraction=0.0,
    early_stopping_patience=0,
    stop_when_satisfied=False,  # all 30 epochs, as the issue specifies
    mixed_precision="off",
)


def hparams_for(
    method: str, data: datasets.Dataset, overrides: list[str], plain_overrides: list[str] = ()
) -> HParams:
    shape = {"image_size": data.train_x.shape[1], "channels": data.train_x.shape[3]}
    identities = len(np.unique(data.train_y))
    if method == "notebook":
        return HParams.from_config({**single.NOTEBOOK, **shape})
    if method == "plain":
        return HParams.from_config(
            {
                **PLAIN,
                **shape,
                "identities_per_batch": min(10, identities),
                **single.parse_overrides(plain_overrides),
            }
        )
    default = single.default_hparams(overrides, data.train_x.shape[1:])
    # The pipeline holds the validation slice back like its eval split.
    by = "identity" if data.protocol == datasets.OPEN else "image"
    return dataclasses.replace(default, validation_by=by)


def evaluate(data: datasets.Dataset, train_emb, test_emb) -> dict:
    scores = em.retrieval_metrics(test_emb, data.test_y, recall_at_k=(1,))
    verification = em.verification_metrics(
        test_emb, data.test_y, max_pairs=single.MAX_PAIRS, far_targets=FARS
    )
    if data.protocol == datasets.GALLERY:
        p_at_1 = retrieval.precision_at_1(test_emb, data.test_y, train_emb, data.train_y)
    else:
        p_at_1 = scores[em.PRECISION_AT_1]
    return {
        "precision_at_1": p_at_1,
        "map_at_r": scores[em.MAP_AT_R],
        **{f"val_at_far_{far:g}": verification[em.val_name(far)] for far in FARS},
        "eer": verification[em.EER],
    }


def note_for(method: str, hparams: HParams, label: str) -> str:
    """What differs from the method's definition (a capped plain run says so in the table)."""
    if method == "plain" and hparams.epochs != PLAIN_EPOCHS:
        return f"epochs capped at {hparams.epochs} (recipe: {PLAIN_EPOCHS}) for time"
    if method == "default" and label != "default":
        changed = {k: v for k, v in hparams.to_config().items() if getattr(HParams(), k) != v}
        changed.pop("image_size", None)
        changed.pop("channels", None)
        changed.pop("validation_by", None)
        return ", ".join(f"{k}={v}" for k, v in sorted(changed.items()))
    return ""


def run_one(
    method: str,
    data: datasets.Dataset,
    overrides: list[str] = (),
    plain_overrides: list[str] = (),
    label: str = "default",
) -> dict:
    """One row: `method` trained on `data` (`overrides` change the default and `label` names
    it; `plain_overrides` change the plain reference), scored on its test split."""
    label = label if method == "default" else method
    row = {"dataset": data.name, "method": label, "image_size": data.train_x.shape[1]}
    if method == "pixels":
        train_emb = data.train_x.reshape(len(data.train_x), -1)
        test_emb = data.test_x.reshape(len(data.test_x), -1)
    else:
        hparams = hparams_for(method, data, overrides, plain_overrides)
        result = single.train_method(hparams, data.train_x, data.train_y)
        row.update(
            hparams=hparams.to_config(),
            epochs_run=result.epochs_run,
            train_seconds=result.wall_seconds,
            kept_epoch=(result.selection or {}).get("kept_epoch"),
            note=note_for(method, hparams, label),
        )
        train_emb = single.embed(result.embedding_network, data.train_x)
        test_emb = single.embed(result.embedding_network, data.test_x)
    row.update(evaluate(data, train_emb, test_emb))
    return row


def format_table(rows: list[dict]) -> str:
    lines = [
        "| dataset | method | P@1 | MAP@R | VAL@FAR=1e-3 | VAL@FAR=1e-2 | EER | train s "
        "| epochs (kept/run) | note |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        seconds = f"{row['train_seconds']:.0f}" if row.get("train_seconds") else "-"
        epochs = "-"
        if row.get("epochs_run"):
            kept = row.get("kept_epoch")
            epochs = f"{kept}/{row['epochs_run']}" if kept else f"{row['epochs_run']}"
        lines.append(
            f"| {row['dataset']} | {row['method']} | {row['precision_at_1']:.3f} | "
            f"{row['map_at_r']:.3f} | {row['val_at_far_0.001']:.3f} | "
            f"{row['val_at_far_0.01']:.3f} | {row['eer']:.3f} | {seconds} | {epochs} | "
            f"{row.get('note', '')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=",".join(datasets.LOADERS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument(
        "--image-size", type=int, default=datasets.IMAGE_SIZE, help="images resized to N x N"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="changes the default"
    )
    parser.add_argument(
        "--plain-set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="changes the plain reference (e.g. epochs=10: a cap, noted in the table)",
    )
    parser.add_argument("--label", default="default", help="method name of the default's rows")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    logging.set_verbosity(logging.INFO)
    methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(methods) - set(METHODS))
    names = [d for d in args.datasets.split(",") if d]
    unknown += sorted(set(names) - set(datasets.LOADERS))
    if unknown:
        parser.error(f"unknown datasets or methods {unknown}")
    rows = []
    for name in names:
        data = datasets.LOADERS[name](args.image_size)
        print(
            f"== {name}: train {data.train_x.shape}, test {data.test_x.shape}, "
            f"{data.protocol} protocol",
            flush=True,
        )
        for method in methods:
            rows.append(run_one(method, data, args.set, args.plain_set, args.label))
            print(rows[-1], flush=True)
    report(rows, args.json)
    return 0


def report(rows: list[dict], json_path: str | None) -> None:
    """Prints the rows' table; with `json_path`, writes them there with the command line."""
    print("\n" + format_table(rows))
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"rows": rows, "argv": sys.argv[1:]}, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
