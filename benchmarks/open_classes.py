"""Open-set gain over raw pixels by the number of training classes, on one fixed open test set.

    .venv/bin/python -m benchmarks.open_classes [--dataset digits] [--test-classes 2]
        [--train-classes 2,4,6,8] [--set NAME=VALUE ...] [--json PATH]

The open sets of the recipe benchmark train on 6 classes and score 4 others. To see what more
classes buy, this holds the last `--test-classes` classes of the data out as the open test set
(digits 8 and 9 by default, every image of them) and trains the default (changed by --set, as
in recipe_benchmark) on the first N classes for each N of --train-classes (every image of
them), scoring each on the same test set, and raw pixels once. The datasets are recipe_benchmark's
closed-set loaders (digits, fashion-mnist), both splits pooled.
"""

import argparse
import sys

import numpy as np
from absl import logging

import components  # noqa: F401  (sets TF_USE_LEGACY_KERAS before tf.keras loads)
from benchmarks import datasets, recipe_benchmark


def open_set(data: datasets.Dataset, train_classes: int, test_classes: int) -> datasets.Dataset:
    """The first `train_classes` classes to train on, the last `test_classes` to score."""
    images = np.concatenate([data.train_x, data.test_x])
    labels = np.concatenate([data.train_y, data.test_y])
    classes = np.unique(labels)
    if train_classes < 2 or train_classes + test_classes > len(classes):
        raise ValueError(
            f"--train-classes {train_classes}: 2 to {len(classes) - test_classes} with "
            f"{test_classes} test classes of {len(classes)}"
        )
    train = np.isin(labels, classes[:train_classes])
    test = np.isin(labels, classes[-test_classes:])
    name = f"{data.name}, {train_classes} classes -> {test_classes}"
    return datasets.Dataset(
        name, images[train], labels[train], images[test], labels[test], datasets.OPEN
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="digits", choices=("digits", "fashion-mnist"))
    parser.add_argument("--test-classes", type=int, default=2)
    parser.add_argument("--train-classes", default="2,4,6,8")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    logging.set_verbosity(logging.WARNING)
    data = datasets.LOADERS[args.dataset]()
    rows = []
    for count in (int(n) for n in args.train_classes.split(",")):
        try:
            subset = open_set(data, count, args.test_classes)
        except ValueError as error:
            parser.error(str(error))
        # Raw pixels once: the open test set is the same for every count.
        for method in ("default",) if rows else ("pixels", "default"):
            rows.append(recipe_benchmark.run_one(method, subset, args.set))
            rows[-1]["train_classes"] = count
            print(rows[-1], flush=True)
    recipe_benchmark.report(rows, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
