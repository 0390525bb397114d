"""`siamese-tfx predict`: runs a pushed model's signature on image files and prints JSON.

The output is what TF Serving's REST predict API answers to a columnar ("inputs") request:
{"outputs": {name: value, ...}} ({"outputs": value} for a signature with one output, such as
serving_default's embedding).

Everything that needs no model is checked first, before TensorFlow is imported, in well under
a second: the model directory (a SavedModel, or a serving directory of numbered versions), each
image (a readable, non-empty file that is PNG, JPEG, GIF or BMP by its magic number, the formats
the model decodes, with a header that holds its size), pairs for verify, and the pixel limit:
each header's width x height, read in pure Python (components.serving.image_header), against
the model's max_image_pixels in assets.extra/calibration.json. The served model keeps its own
in-graph guard: the same rule, in the same words; it alone decides when calibration.json (or
its max_image_pixels) is absent.

The console: stdout gets the JSON answer, stderr one line "siamese-tfx predict: ..." on an
error, nothing else. While TensorFlow loads and runs, library logging (TensorFlow's C++ logging
on file descriptor 2, absl, Python warnings) goes to a temporary log file through
pipeline.console, as in `siamese-tfx run`. It is deleted when the command succeeds or fails for
a reason the error line states in full (a refused image, a missing signature): a prediction
has no output directory to keep a log in, and the model directory may be read-only, so a log
nobody asked for is not left behind. An unexpected failure keeps it and names it in the error
line, as the only place holding the traceback and TensorFlow's own messages. Unless it is set,
TF_CPP_MIN_LOG_LEVEL=1 keeps TensorFlow's INFO lines (oneDNN, cpu_feature_guard) out of even
that log. --verbose shows all of the logging on stderr as well.
"""

import argparse
import json
import os
import re
import sys

from components import keys
from components.serving import image_header

# The command's words for the served model's signatures.
SIGNATURES = {"embed": keys.SERVING_DEFAULT, keys.VERIFY: keys.VERIFY, keys.IDENTIFY: keys.IDENTIFY}
CALIBRATION_PATH = (keys.ASSETS_EXTRA, keys.CALIBRATION_FILE)  # The model's calibration facts.
MAX_IMAGE_PIXELS = "max_image_pixels"  # the ServingModel's calibration fact


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
    predict.add_argument(
        "--verbose",
        action="store_true",
        help="show TensorFlow's and the other libraries' logging on stderr (by default it goes "
        "to a temporary log file, named in the error line if the command fails unexpectedly)",
    )
    predict.add_argument("signature", choices=sorted(SIGNATURES), help="what to compute")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image files")


def model_version_dir(path: str) -> str:
    """`path` if it holds a SavedModel, else its newest numbered version sub-directory."""
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    if not os.path.exists(path):
        raise PredictError(f"--model {path}: no such directory")
    if not os.path.isdir(path):
        raise PredictError(f"--model {path}: not a directory")
    versions = [n for n in os.listdir(path) if n.isdigit()]
    versions = [n for n in versions if os.path.isfile(os.path.join(path, n, "saved_model.pb"))]
    if not versions:
        raise PredictError(
            f"--model {path}: neither a SavedModel (saved_model.pb) nor a serving directory "
            "with numbered versions"
        )
    return os.path.join(path, max(versions, key=int))


def max_image_pixels(version_dir: str) -> int | None:
    """The model's pixel limit from its calibration.json; None if it does not say."""
    try:
        with open(os.path.join(version_dir, *CALIBRATION_PATH)) as f:
            limit = json.load(f).get(MAX_IMAGE_PIXELS)
    except (OSError, ValueError, AttributeError):  # absent, unreadable or not a JSON object
        return None
    return limit if isinstance(limit, int) and not isinstance(limit, bool) else None


def read_image(path: str) -> bytes:
    """The bytes of one image file, refused unless they are PNG/JPEG/GIF/BMP with a header."""
    if os.path.isdir(path):
        raise PredictError(f"{path}: a directory, not an image file")
    if not os.path.isfile(path):
        raise PredictError(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        raise PredictError(f"{path}: cannot read it ({error.strerror})") from None
    if not data:
        raise PredictError(f"{path}: empty file, not an image")
    image_format = image_header.image_format(data)
    if image_format is None:
        raise PredictError(
            f"{path}: not a {', '.join(image_header.FORMATS[:-1])} or "
            f"{image_header.FORMATS[-1]} image (it starts with {data[:8]!r})"
        )
    if image_header.image_size(data) is None:
        raise PredictError(
            f"{path}: cannot decode the image (its {image_format} header is cut short or "
            "holds no width and height)"
        )
    return data


def check_pixels(paths: list[str], images: list[bytes], limit: int) -> None:
    """The served model's pixel guard (components.serving.image_guard), worded as it is."""
    for index, (path, image) in enumerate(zip(paths, images, strict=True)):
        width, height = image_header.image_size(image)
        if width * height > limit:
            raise PredictError(
                f"{path}: image {index} of the batch is {width} x {height} = "
                f"{width * height} pixels, above the limit of {limit} pixels "
                "(--max-image-pixels at export)"
            )


def check_request(model_dir: str, signature: str, paths: list[str]) -> tuple[str, list[bytes]]:
    """(the version dir, the images' bytes) after every check that needs no TensorFlow."""
    if SIGNATURES[signature] == keys.VERIFY and len(paths) % 2:
        raise PredictError(f"verify takes pairs of images (A1 B1 A2 B2 ...), got {len(paths)}")
    version_dir = model_version_dir(model_dir)
    images = [read_image(path) for path in paths]
    limit = max_image_pixels(version_dir)
    if limit is not None:
        check_pixels(paths, images, limit)
    return version_dir, images


def to_json_value(tensor):
    value = tensor.numpy()
    if value.dtype == object:
        return [[s.decode() for s in row] for row in value] if value.ndim == 2 else value.tolist()
    return value.tolist()


def _examples(images: list[bytes]):
    """Serialized tf.Examples of the images, written as a REST client writes them (no TFX
    import: that would load every TFX component and Google Cloud client first)."""
    import tensorflow as tf

    from pipeline.serving_client import serialized_example

    return tf.constant([serialized_example(image) for image in images])


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


def run(version_dir: str, signature: str, paths: list[str], images: list[bytes]) -> dict:
    """The outputs of one signature on the checked images, as TF Serving's REST API returns them."""
    import tensorflow as tf

    model = tf.saved_model.load(version_dir)
    name = SIGNATURES[signature]
    if name not in model.signatures:
        raise PredictError(
            f"{version_dir}: the model has no '{name}' signature (it was exported with "
            f"--no-gallery?); it has {sorted(model.signatures)}"
        )
    function = model.signatures[name]
    from pipeline.serving_client import signature_inputs

    inputs = {key: _examples(part) for key, part in signature_inputs(name, images).items()}
    try:
        outputs = function(**inputs)
    except tf.errors.InvalidArgumentError:
        raise PredictError(
            _culprit(model.signatures[keys.SERVING_DEFAULT], paths, images)
        ) from None
    values = {key: to_json_value(tensor) for key, tensor in sorted(outputs.items())}
    return {"outputs": next(iter(values.values())) if len(values) == 1 else values}


def run_logged(version_dir: str, signature: str, paths, images, verbose: bool) -> dict:
    """run() with library logging in a temporary log file (see the module doc)."""
    from pipeline import console

    def work():
        return run(version_dir, signature, paths, images)

    return console.with_temporary_log("predict", verbose, work, PredictError, version_dir)


def main(args: argparse.Namespace) -> int:
    try:
        version_dir, images = check_request(args.model, args.signature, args.images)
        result = run_logged(version_dir, args.signature, args.images, images, args.verbose)
    except PredictError as error:
        print(f"siamese-tfx predict: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0
