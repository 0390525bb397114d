"""`siamese-tfx gallery enrol | forget`: change who `identify` knows, without retraining.

Both work on a serving dir (local or s3://) and write a new version there
(components.serving.gallery_changes says how, and what the next training run keeps).
Paths are checked before TensorFlow is imported; the libraries' logging goes to a temporary
log that is named only when something unexpected fails.
"""

import argparse
import os
import sys


class GalleryCommandError(RuntimeError):
    """One line for the console: the path or name, and the problem."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    gallery = commands.add_parser(
        "gallery",
        help="enrol or forget people in a serving dir's gallery (a new version, no retraining)",
        description="Change the gallery that `identify` searches. Each change writes a new "
        "version into the serving dir (same weights and threshold); TF Serving serves it like a "
        "push. The next training run keeps the change.",
    )
    changes = gallery.add_subparsers(dest="change", required=True)
    enrol = changes.add_parser(
        "enrol",
        help="add the people of a dataset (any --data layout) to the gallery",
        description="Embed the images of a dataset (a folder per identity, MNIST-format IDX or "
        "raw TFRecords) with the newest served model and add them to its gallery.",
    )
    forget = changes.add_parser(
        "forget",
        help="remove one identity by name from every version",
        description="Write a version without the identity, delete their enrolled images, keep "
        "them out of later galleries (the training data's included), and delete every other "
        "version whose gallery still holds them.",
    )
    for parser in (enrol, forget):
        parser.add_argument(
            "--serving-dir",
            required=True,
            metavar="DIR",
            help="the Pusher's serving dir (numbered versions); may be s3:// or gs://",
        )
        parser.add_argument("--verbose", action="store_true", help="library logging on stderr")
    enrol.add_argument("--data", required=True, metavar="PATH", help="the people to enrol")
    forget.add_argument("--identity", required=True, metavar="NAME", help="who to forget")


def _local(path: str) -> bool:
    return "://" not in path


def check(args: argparse.Namespace) -> None:
    """What needs no TensorFlow: local paths exist, the name is not empty."""
    if _local(args.serving_dir) and not os.path.isdir(args.serving_dir):
        raise GalleryCommandError(f"--serving-dir {args.serving_dir}: no such directory")
    data = getattr(args, "data", None)
    if data is not None and _local(data) and not os.path.isdir(data):
        raise GalleryCommandError(f"--data {data}: no such directory")
    if getattr(args, "identity", "x") == "":
        raise GalleryCommandError("--identity: give a name")


def change(args: argparse.Namespace) -> str:
    """Makes the change; returns the line that says what it did."""
    from components.example_gen.sources import DatasetError
    from components.serving import gallery_changes
    from pipeline import filesystems

    filesystems.register()
    try:
        if args.change == "enrol":
            done = gallery_changes.enrol(args.serving_dir, args.data)
            verb = "were enrolled already; completed the ledger" if done["resumed"] else "enrolled"
            return (
                f"{len(done['identities'])} people ({done['images']} images) from {args.data} "
                f"{verb}: newest version {done['version']}"
            )
        done = gallery_changes.forget(args.serving_dir, args.identity)
        if done["done"]:
            return f"{args.identity!r} was forgotten already: nothing holds them"
        removed = len(done["removed_versions"])
        return (
            f"forgot {args.identity!r}: newest version {done['version']}; deleted {removed} "
            f"older version{'s' * (removed != 1)} that held them"
        )
    except (gallery_changes.GalleryChangeError, DatasetError) as error:
        raise GalleryCommandError(str(error)) from None


def main(args: argparse.Namespace) -> int:
    try:
        check(args)
        from pipeline import console

        line = console.with_temporary_log(
            "gallery", args.verbose, lambda: change(args), GalleryCommandError, args.serving_dir
        )
    except GalleryCommandError as error:
        print(f"siamese-tfx gallery {args.change}: error: {error}", file=sys.stderr)
        return 1
    print(line)
    return 0
