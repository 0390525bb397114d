"""`siamese-tfx predict` on real image files against small exported serving models.

Bad requests are refused before TensorFlow is imported, in one line; the answer is the only
thing on stdout, TensorFlow's logging never on the console.
"""

import json
import os
import struct
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest
from PIL import Image

from components import keys
from components.serving.export_test import _export, data  # noqa: F401 (fixture)
from components.serving.image_guard_test import encoded, png_declaring
from pipeline import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIMIT = 16_000_000  # ServingSettings' default max_image_pixels
HEAVY = ("tensorflow", "tfx", "apache_beam", "keras", "tf_keras")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = []
    for n in range(4):
        path = root / f"{n}.png"
        Image.fromarray(rng.integers(0, 255, (8 + n, 8), dtype=np.uint8)).save(path)
        paths.append(str(path))
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (root / "bomb.png").write_bytes(png_declaring(20000, 20000))
    (root / "empty.png").write_bytes(b"")
    (root / "notes.txt").write_text("not an image\n")
    (root / "folder").mkdir()
    for image_format, bomb in bombs().items():
        (root / f"bomb.{image_format.lower()}").write_bytes(bomb)
    return root, paths


def bombs() -> dict[str, bytes]:
    """Small PIL-written JPEG/GIF/BMP files whose headers are patched to 20000 x 20000."""
    jpeg = bytearray(encoded((8, 8), "JPEG"))
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5 : sof + 9] = struct.pack(">HH", 20000, 20000)
    gif = bytearray(encoded((8, 8), "GIF", "P"))
    gif[6:10] = struct.pack("<HH", 20000, 20000)
    bmp = bytearray(encoded((8, 8), "BMP"))
    bmp[18:26] = struct.pack("<Ii", 20000, 20000)
    return {"JPEG": bytes(jpeg), "GIF": bytes(gif), "BMP": bytes(bmp)}


@pytest.fixture(scope="module")
def serving_dirs(data):  # noqa: F811
    with_gallery, *_ = _export(data, "predict_gallery")
    without, *_ = _export(data, "predict_plain", with_gallery=False, max_image_pixels=1000)
    # The ServingModel component records the limit among the calibration facts; `without`
    # keeps the fixture's calibration.json, which does not: the model alone guards it.
    calibration = os.path.join(with_gallery, keys.ASSETS_EXTRA, keys.CALIBRATION_FILE)
    with open(calibration) as f:
        facts = json.load(f)
    with open(calibration, "w") as f:
        json.dump({**facts, "max_image_pixels": LIMIT}, f)
    # A Pusher-style serving dir: numbered versions, the newest is used.
    base = os.path.join(os.path.dirname(with_gallery), "serving")
    os.makedirs(base)
    os.symlink(without, os.path.join(base, "100"))
    os.symlink(with_gallery, os.path.join(base, "200"))
    return base, without


def predict(capsys, *args):
    code = cli.main(["predict", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_each_signature_prints_tf_serving_outputs(capsys, images, serving_dirs):
    _, paths = images
    base, _ = serving_dirs
    code, out, _ = predict(capsys, "--model", base, "embed", *paths[:2])
    assert code == 0
    embedding = np.array(json.loads(out)["outputs"])
    assert embedding.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(embedding, axis=1), 1.0, atol=1e-5)

    # A grey model takes GIF and BMP files too: the same pixels, the same embedding.
    root, _ = images
    pixels = np.asarray(Image.open(paths[0]))
    same = [paths[0]]
    for image_format in ("GIF", "BMP"):
        same.append(str(root / f"0.{image_format.lower()}"))
        Image.fromarray(pixels).save(same[-1], format=image_format)
    code, out, err = predict(capsys, "--model", base, "embed", *same)
    assert code == 0, err
    np.testing.assert_allclose(
        np.array(json.loads(out)["outputs"])[1:], embedding[:1].repeat(2, 0), atol=1e-5
    )

    code, out, _ = predict(capsys, "--model", base, "verify", *paths)
    outputs = json.loads(out)["outputs"]
    assert code == 0 and set(outputs) == {"distance", "same", "threshold"}
    assert len(outputs["distance"]) == len(outputs["same"]) == 2
    # The threshold: a scalar, or one per pair (batch-first outputs for the REST row format).
    thresholds = np.broadcast_to(outputs["threshold"], len(outputs["distance"])).tolist()
    assert outputs["same"] == [d <= t for d, t in zip(outputs["distance"], thresholds, strict=True)]

    code, out, _ = predict(capsys, "--model", base, "identify", paths[0])
    outputs = json.loads(out)["outputs"]
    assert code == 0 and set(outputs) == {"identities", "distances", "known"}
    assert len(outputs["identities"][0]) == 5 and all(
        isinstance(i, str) for i in outputs["identities"][0]
    )


def test_errors_name_the_file_or_model_and_the_problem(capsys, images, serving_dirs):
    root, paths = images
    base, without = serving_dirs
    cases = [
        ((base, "embed", str(root / "missing.png")), "missing.png: no such file"),
        ((base, "embed", paths[0], str(root / "broken.png")), "broken.png: cannot decode"),
        (
            (base, "embed", str(root / "bomb.png")),
            "bomb.png: image 0 of the batch is 20000 x 20000",
        ),
        ((without, "identify", paths[0]), "no 'identify' signature"),
        ((base, "verify", *paths[:3]), "pairs of images"),
        ((str(root), "embed", paths[0]), "neither a SavedModel"),
    ]
    for args, message in cases:
        code, out, err = predict(capsys, "--model", *args)
        assert code == 1 and out == "", args
        assert message in err, (args, err)


def test_without_a_recorded_limit_the_model_refuses_the_bomb(capsys, images, serving_dirs):
    root, _ = images
    _, without = serving_dirs
    code, out, err = predict(capsys, "--model", without, "embed", str(root / "bomb.png"))
    assert (code, out) == (1, "")
    assert err == (
        f"siamese-tfx predict: {root / 'bomb.png'}: image 0 of the batch is 20000 x 20000 = "
        "400000000 pixels, above the limit of 1000 pixels (--max-image-pixels at export)\n"
    )


def run_in_a_subprocess(script: str, tmp_path, *args) -> subprocess.CompletedProcess:
    """`script` in a fresh interpreter, its temporary files in tmp_path/tmp."""
    temp = tmp_path / "tmp"
    temp.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, *(["-c", script] if script else []), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, "TMPDIR": str(temp)},
    )


def test_bad_requests_are_refused_in_one_line_before_tensorflow_loads(
    images, serving_dirs, tmp_path
):
    root, paths = images
    base, _ = serving_dirs
    (tmp_path / "a_file").write_text("")
    cases = [
        (["--model", str(tmp_path / "nowhere"), "embed", paths[0]], "no such directory"),
        (["--model", str(tmp_path / "a_file"), "embed", paths[0]], "a_file: not a directory"),
        (["--model", str(root), "embed", paths[0]], "neither a SavedModel"),
        (["--model", base, "embed", paths[0], str(root / "missing.png")], "no such file"),
        (["--model", base, "embed", str(root / "folder")], "folder: a directory, not an image"),
        (["--model", base, "embed", str(root / "empty.png")], "empty.png: empty file"),
        (["--model", base, "verify", *paths[:3]], "pairs of images (A1 B1 A2 B2 ...), got 3"),
        (["--model", base, "embed", str(root / "notes.txt")], "not a PNG, JPEG, GIF or BMP"),
        (["--model", base, "embed", str(root / "broken.png")], "broken.png: cannot decode"),
        *(
            (
                ["--model", base, "verify", paths[0], str(root / f"bomb.{name}")],
                f"bomb.{name}: image 1 of the batch is 20000 x 20000 = 400000000 pixels, "
                f"above the limit of {LIMIT} pixels",
            )
            for name in ("png", "jpeg", "gif", "bmp")
        ),
    ]
    script = textwrap.dedent(
        f"""
        import contextlib, io, json, sys, time
        from pipeline import cli
        results = []
        for args in {[args for args, _ in cases]!r}:
            out, err = io.StringIO(), io.StringIO()
            started = time.monotonic()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = cli.main(["predict", *args])
            results.append([code, out.getvalue(), err.getvalue(), time.monotonic() - started])
        heavy = sorted(name for name in sys.modules if name.split(".")[0] in {HEAVY!r})
        print(json.dumps({{"results": results, "heavy": heavy}}))
        """
    )
    result = run_in_a_subprocess(script, tmp_path)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    report = json.loads(result.stdout)
    assert report["heavy"] == []
    for (args, message), (code, out, err, seconds) in zip(cases, report["results"], strict=True):
        assert (code, out) == (1, ""), args
        assert err.startswith("siamese-tfx predict: ") and err.count("\n") == 1, (args, err)
        assert err.endswith("\n") and message in err, (args, err)
        assert seconds < 2, (args, seconds)
    assert os.listdir(tmp_path / "tmp") == []


def test_a_good_request_prints_one_json_document_and_no_logging(images, serving_dirs, tmp_path):
    _, paths = images
    base, _ = serving_dirs
    result = run_in_a_subprocess(
        "", tmp_path, "-m", "pipeline", "predict", "--model", base, "embed", *paths[:2]
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.count("\n") == 1
    assert np.array(json.loads(result.stdout)["outputs"]).shape == (2, 16)
    assert os.listdir(tmp_path / "tmp") == []  # the log is gone with the answer


def test_an_unexpected_failure_is_one_line_naming_the_kept_log(
    capsys, images, tmp_path, monkeypatch
):
    _, paths = images
    model = tmp_path / "junk"
    model.mkdir()
    (model / "saved_model.pb").write_bytes(b"not a SavedModel")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    code, out, err = predict(capsys, "--model", str(model), "embed", paths[0])
    assert (code, out) == (1, "")
    assert err.startswith(f"siamese-tfx predict: {model}: OSError: Cannot parse file")
    assert err.count("\n") == 1
    (log,) = [name for name in os.listdir(tmp_path) if name.startswith("siamese-tfx-predict-")]
    assert err.endswith(f"(full log: {tmp_path / log})\n")
    with open(tmp_path / log) as f:
        assert "Traceback" in f.read()
