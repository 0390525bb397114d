"""`siamese-tfx predict`: runs a pushed model's signature on image files and prints JSON.

The output is what TF Serving's REST predict API answers to a columnar ("inputs") request:
{"outputs": {name: value, ...}} ({"outputs": value} for a signature with one output, such as
serving_default's embedding).
"""

import argparse
import json
import os
import re
import sys

from components import keys

# The command's words for the served model's signatures.
SIGNATURES = {"embed": keys.SERVING_DEFAULT, keys.VERIFY: keys.VERIFY, keys.IDENTIFY: keys.IDENTIFY}


class PredictError(ValueError):
    """A model dir or image the command cannot use; the message says which and why."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    predict = commands.add_parser(
        "predict",
        help="run a pushed model on image files and print its outputs as JSON",
        description="Load a pushed model and run one signature on PNG/JPEG/GIF/BMP files: "
        "embed (serving_default), verify (pairs: A1 B1 A2 B2 ...) or identify (against the "
        "model's gallery). Prints the outputs as TF Serving's REST API returns them.",
    )
    predict.add_argument(
        "--model",
        required=True,
        metavar="DIR",
        help="a model version directory (holding saved_model.pb), or the serving directory "
        "that the Pusher writes versions into (its newest version is used)",
    )
    predict.add_argument("signature", choices=sorted(SIGNATURES), help="what to compute")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image files")


def model_version_dir(path: str) -> str:
    """`path` if it holds a SavedModel, else its newest numbered version sub-directory."""
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    if not os.path.isdir(path):
        raise PredictError(f"--model {path}: no such directory")
    versions = [n for n in os.listdir(path) if n.isdigit()]
    versions = [n for n in versions if os.path.isfile(os.path.join(path, n, "saved_model.pb"))]
    if not versions:
        raise PredictError(
            f"--model {path}: neither a SavedModel (saved_model.pb) nor a serving directory "
            "with numbered versions"
        )
    return os.path.join(path, max(versions, key=int))


def read_images(paths: list[str]) -> list[bytes]:
    images = []
    for path in paths:
        if not os.path.isfile(path):
            raise PredictError(f"{path}: no such file")
        with open(path, "rb") as f:
            images.append(f.read())
    return images


def to_json_value(tensor):
    value = tensor.numpy()
    if value.dtype == object:
        return [[s.decode() for s in row] for row in value] if value.ndim == 2 else value.tolist()
    return value.tolist()


def _examples(images: list[bytes]):
    import tensorflow as tf

    from components.example_gen import readers

    return tf.constant([readers.make_example(image, "").SerializeToString() for image in images])


def _reason(error) -> str:
    """The op's own message out of TF's graph-error text (which adds node names and stacks)."""
    text = getattr(error, "message", str(error))
    match = re.search(r"assertion failed: \[(.*?)\]", text)
    if match:
        return match.group(1)
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith(("[[", "File "))]
    return lines[-1] if lines else type(error).__name__


def _culprit(serve, paths, images) -> str:
    """The first image that fails on its own, with the model's reason."""
    import tensorflow as tf

    for path, image in zip(paths, images, strict=True):
        try:
            serve(**{keys.EXAMPLES: _examples([image])})
        except tf.errors.InvalidArgumentError as error:
            reason = _reason(error)
            if "above the limit" not in reason:
                reason = f"cannot decode the image ({reason})"
            return f"{path}: {reason}"
    return "the model refused the request"


def run(model_dir: str, signature: str, paths: list[str]) -> dict:
    """The outputs of one signature on the images, as TF Serving's REST API returns them."""
    import tensorflow as tf

    images = read_images(paths)
    if SIGNATURES[signature] == keys.VERIFY and len(images) % 2:
        raise PredictError(f"verify takes pairs of images (A1 B1 A2 B2 ...), got {len(images)}")
    version_dir = model_version_dir(model_dir)
    model = tf.saved_model.load(version_dir)
    name = SIGNATURES[signature]
    if name not in model.signatures:
        raise PredictError(
            f"{version_dir}: the model has no '{name}' signature (it was exported with "
            f"--no-gallery?); it has {sorted(model.signatures)}"
        )
    function = model.signatures[name]
    if name == keys.VERIFY:
        inputs = {
            keys.EXAMPLES_A: _examples(images[0::2]),
            keys.EXAMPLES_B: _examples(images[1::2]),
        }
    else:
        inputs = {keys.EXAMPLES: _examples(images)}
    try:
        outputs = function(**inputs)
    except tf.errors.InvalidArgumentError:
        raise PredictError(
            _culprit(model.signatures[keys.SERVING_DEFAULT], paths, images)
        ) from None
    values = {key: to_json_value(tensor) for key, tensor in sorted(outputs.items())}
    return {"outputs": next(iter(values.values())) if len(values) == 1 else values}


def main(args: argparse.Namespace) -> int:
    try:
        result = run(args.model, args.signature, args.images)
    except PredictError as error:
        print(f"siamese-tfx predict: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0
