"""Enrol and forget on a real serving dir: new versions, the ledger, retention and resuming.

The served model is export_test's stand-in for the Trainer (a fixed projection of the pixels),
exported with the real serving export, so each change takes seconds.
"""

import io
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from sklearn.datasets import load_digits

from components import example_io
from components.baseline import served_baseline
from components.serving import export, gallery, gallery_changes, gallery_ledger, pusher
from components.serving.export_test import _Projection


def _write_folder(root, people: dict[str, int], per_person=6):
    """ROOT/<name>/<n>.png with digit `people[name]`'s images."""
    digits = load_digits()
    for name, digit in people.items():
        os.makedirs(root / name)
        chosen = np.flatnonzero(digits.target == digit)[-per_person:]
        for n, index in enumerate(chosen):
            pixels = np.round(digits.images[index] * 255 / 16).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{n}.png")
    return str(root)


def _records(folder):
    return list(gallery.dataset_records(folder))


def _identify(version_dir, records):
    identify = tf.saved_model.load(version_dir).signatures["identify"]
    return identify(examples=tf.constant(records))["identities"].numpy().astype(str)


@pytest.fixture
def serving_dir(tmp_path):
    """A serving dir holding one version, its gallery digits 0-5 as people 'digit-N'."""
    trained = str(tmp_path / "trained")
    module = _Projection()
    tf.saved_model.save(module, trained, signatures={"serving_default": module.serve})
    base = _write_folder(tmp_path / "base", {f"digit-{d}": d for d in range(6)}, per_person=20)
    embeddings, labels, _ = gallery.build_gallery(
        trained, gallery.records_dataset(base), "images", 1000
    )
    served = tmp_path / "serving"
    facts = {"threshold": 0.4, "top_k": 3, "max_image_pixels": 10**6, "max_gallery": 1000}
    facts.update(gallery_mode="images", gallery_size=len(labels))
    export.export_serving_model(
        trained,
        str(served / "1000"),
        threshold=0.4,
        max_image_pixels=10**6,
        calibration=facts,
        gallery=(embeddings, labels),
        top_k=3,
    )
    return str(served)


def _all_bytes(root) -> bytes:
    data = b""
    for folder, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(folder, name), "rb") as f:
                data += f.read()
    return data


def test_enrol_writes_a_new_version_that_identifies_the_new_people(serving_dir, tmp_path):
    people = _write_folder(tmp_path / "people", {"ada": 8, "grace": 9})
    done = gallery_changes.enrol(serving_dir, people)
    assert done["identities"] == ["ada", "grace"] and done["images"] == 12
    assert sorted(os.listdir(serving_dir)) == ["1000", os.path.basename(done["version"]), "gallery"]
    assert int(os.path.basename(done["version"])) > 1000
    names = _identify(done["version"], _records(people))
    assert set(names[:, 0]) == {"ada", "grace"}
    old, new = (
        tf.saved_model.load(os.path.join(serving_dir, v)) for v in ("1000", done["version"])
    )
    probe = tf.constant(_records(people)[:3])
    np.testing.assert_array_equal(  # Same weights.
        old.signatures["serving_default"](examples=probe)["embedding"].numpy(),
        new.signatures["serving_default"](examples=probe)["embedding"].numpy(),
    )
    assert new.threshold.numpy() == old.threshold.numpy() == np.float32(0.4)
    calibration = export.read_calibration(done["version"])
    (change,) = calibration["gallery_changes"]
    assert change["change"] == "enrol" and change["identities"] == ["ada", "grace"]
    assert change["at"].endswith("+00:00") and calibration["gallery_size"] == 120 + 12
    assert calibration["threshold"] == 0.4 and calibration["top_k"] == 3
    # The ledger: each person's images, for the next training run's gallery.
    base = tf.data.Dataset.from_tensor_slices(_records(tmp_path / "base"))
    labels = [
        example_io.label_of(tf.train.Example.FromString(r))
        for r in gallery_ledger.with_ledger(base, serving_dir).as_numpy_iterator()
    ]
    assert labels.count("ada") == labels.count("grace") == 6 and len(labels) == 132


def test_enrol_that_failed_before_the_ledger_resumes_without_a_second_version(
    serving_dir, tmp_path, monkeypatch
):
    people = _write_folder(tmp_path / "people", {"ada": 8})
    real = gallery_ledger.write_enrolled

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(gallery_ledger, "write_enrolled", fail)
    with pytest.raises(OSError):
        gallery_changes.enrol(serving_dir, people)
    monkeypatch.setattr(gallery_ledger, "write_enrolled", real)
    versions = served_baseline.versions(serving_dir)
    done = gallery_changes.enrol(serving_dir, people)
    assert done["resumed"] and served_baseline.versions(serving_dir) == versions
    assert len(gallery_ledger.enrolled_records(serving_dir)) == 6


def test_forget_removes_the_person_from_every_version_and_later_galleries(serving_dir, tmp_path):
    people = _write_folder(tmp_path / "ada-and-grace", {"ada": 8, "grace": 9})
    gallery_changes.enrol(serving_dir, people)
    done = gallery_changes.forget(serving_dir, "ada")
    # The original version never held ada: it stays; the enrolment's version is deleted.
    assert [os.path.basename(v) for v in served_baseline.versions(serving_dir)] == [
        "1000",
        os.path.basename(done["version"]),
    ]
    assert len(done["removed_versions"]) == 1
    names = _identify(done["version"], _records(people))
    assert "ada" not in names and set(names[:, 0]) == {"grace"} | set(names[:6, 0])
    assert b"ada" not in _all_bytes(serving_dir)  # Not in any file: only its SHA-256 is kept.
    with open(os.path.join(serving_dir, "gallery", "forgotten.json")) as f:
        assert json.load(f)["forgotten"] == [gallery_ledger.identity_key("ada")]
    change = export.read_calibration(done["version"])["gallery_changes"][-1]
    assert change["change"] == "forget" and change["entries"] == 6
    # A person of the training data is forgotten too, and stays out of the next gallery.
    done = gallery_changes.forget(serving_dir, "digit-3")
    assert served_baseline.versions(serving_dir) == [done["version"]]  # 1000 held digit-3
    base = tf.data.Dataset.from_tensor_slices(_records(tmp_path / "base"))
    kept = gallery_ledger.with_ledger(base, serving_dir).as_numpy_iterator()
    labels = {example_io.label_of(tf.train.Example.FromString(r)) for r in kept}
    assert labels == {"digit-0", "digit-1", "digit-2", "digit-4", "digit-5", "grace"}
    assert gallery_changes.forget(serving_dir, "digit-3")["done"]  # A re-run finds it done.
    with pytest.raises(gallery_changes.GalleryChangeError, match="holds 'nobody'"):
        gallery_changes.forget(serving_dir, "nobody")


def test_bad_changes_get_one_line_naming_the_input(serving_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(gallery_changes.GalleryChangeError, match=str(empty)):
        gallery_changes.enrol(serving_dir, str(empty))
    with pytest.raises(gallery_changes.GalleryChangeError, match="no served version"):
        gallery_changes.enrol(str(tmp_path / "nothing"), serving_dir)
    broken = tmp_path / "broken" / "eve"
    broken.mkdir(parents=True)
    (broken / "1.png").write_bytes(io.BytesIO(b"not a png").getvalue())
    with pytest.raises(gallery_changes.GalleryChangeError, match="1.png"):
        gallery_changes.enrol(serving_dir, str(tmp_path / "broken"))
    assert served_baseline.versions(serving_dir) == [os.path.join(serving_dir, "1000")]


def test_a_push_of_a_gallery_built_before_a_forget_leaves_the_person_out(serving_dir, tmp_path):
    """The Pusher's check: a run whose ServingModel ran before `forget` must not bring back."""
    candidate = str(tmp_path / "candidate")
    shutil.copytree(os.path.join(serving_dir, "1000"), candidate)  # Built before the forget.
    gallery_changes.forget(serving_dir, "digit-2")
    pushed = pusher.without_forgotten(candidate, serving_dir, str(tmp_path / "scratch"))
    names = set(gallery_ledger.version_gallery(pushed)[1])
    assert names == {f"digit-{d}" for d in (0, 1, 3, 4, 5)}
    assert export.read_calibration(pushed)["gallery_changes"][-1]["entries"] == 20
    assert pusher.without_forgotten(pushed, serving_dir, str(tmp_path / "again")) == pushed
