"""Faces check across identity folds: a less noisy estimate than one identity split.

    .venv/bin/python -m benchmarks.faces_folds [--folds 5] [--repeats 1] [--image-size N]
        [--set NAME=VALUE ...] [--methods pixels,plain,default] [--label NAME] [--json PATH]

The Yale faces hold 15 people; ExampleGen's identity split evaluates on about 3 of them, too few
for one number to mean much (a single person's lighting images move MAP@R by 0.1). Here the
identities are dealt into --folds groups (seeded, by name), each held out in turn as the open
eval split while the recipe (the default changed by --set, as in recipe_benchmark) trains on
the others; raw pixels (and, with --methods, the plain reference or the notebook method) are
scored on the same groups. --repeats N deals the people N times (seeds 0 to N-1) and runs
every fold of each deal: VAL@FAR=1e-2 on 3 people rests on about 4 of their 363 negative pairs,
so one deal's mean still moves by a few hundredths. Prints each fold and the means.
"""

import argparse
import json
import sys

import numpy as np
from absl import logging

import components  # noqa: F401  (sets TF_USE_LEGACY_KERAS before tf.keras loads)
from benchmarks import datasets, recipe_benchmark

SEED = 0


def fold_of_each_identity(count: int, folds: int, seed: int = SEED) -> np.ndarray:
    order = np.random.default_rng(seed).permutation(count)
    fold = np.empty(count, dtype=np.int64)
    for k, members in enumerate(np.array_split(order, folds)):
        fold[members] = k
    return fold


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", default=datasets.YALE_FACES)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1, help="deals of people into folds")
    parser.add_argument("--image-size", type=int, default=datasets.IMAGE_SIZE)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--label", default="default")
    parser.add_argument("--methods", default="pixels,default", help="of recipe_benchmark's")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    logging.set_verbosity(logging.WARNING)
    methods = args.methods.split(",")
    unknown = set(methods) - set(recipe_benchmark.METHODS)
    if unknown:
        parser.error(
            f"--methods: unknown {sorted(unknown)}; choose from {recipe_benchmark.METHODS}"
        )
    images, labels, identities = datasets.identity_folder(args.folder, args.image_size)
    if args.folds < 2 or args.repeats < 1:
        parser.error("--folds must be 2 or more and --repeats 1 or more")
    rows = []
    for deal in range(SEED, SEED + args.repeats):
        fold = fold_of_each_identity(len(identities), args.folds, deal)[labels]
        for k in range(args.folds):
            held = fold == k
            name = f"fold {k}" if args.repeats == 1 else f"deal {deal} fold {k}"
            data = datasets.standardised(
                name, images[~held], labels[~held], images[held], labels[held], datasets.OPEN
            )
            for method in methods:
                rows.append(recipe_benchmark.run_one(method, data, args.set, label=args.label))
                rows[-1].update(fold=k, deal=deal)
    runs = args.folds * args.repeats
    means = []
    for method in methods:
        label = args.label if method == "default" else method
        mine = [r for r in rows if r["method"] == label]
        mean = {"dataset": f"mean of {runs} folds", "method": label}
        for key in ("precision_at_1", "map_at_r", "val_at_far_0.001", "val_at_far_0.01", "eer"):
            mean[key] = float(np.mean([r[key] for r in mine]))
        mean["train_seconds"] = float(np.mean([r.get("train_seconds") or 0 for r in mine]))
        mean["note"] = mine[0].get("note", "")
        means.append(mean)
    print("\n" + recipe_benchmark.format_table(rows + means))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "means": means, "argv": sys.argv[1:]}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
