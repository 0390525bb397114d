"""`siamese-tfx predict` on real image files against small exported serving models."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from components.serving.export_test import _export, data  # noqa: F401 (fixture)
from components.serving.image_guard_test import png_declaring
from pipeline import cli


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
    return root, paths


@pytest.fixture(scope="module")
def serving_dirs(data):  # noqa: F811
    with_gallery, *_ = _export(data, "predict_gallery")
    without, *_ = _export(data, "predict_plain", with_gallery=False, max_image_pixels=1000)
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

    code, out, _ = predict(capsys, "--model", base, "verify", *paths)
    outputs = json.loads(out)["outputs"]
    assert code == 0 and set(outputs) == {"distance", "same", "threshold"}
    assert len(outputs["distance"]) == len(outputs["same"]) == 2
    assert outputs["same"] == [d <= outputs["threshold"] for d in outputs["distance"]]

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
