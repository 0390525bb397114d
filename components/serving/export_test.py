"""The served model's signatures, calibration asset, gallery and pixel guard on real images.

A small stand-in for the Trainer's SavedModel (decode, resize, fixed random projection,
L2-normalise; same `serving_default` contract) keeps this test seconds long; the whole
pipeline's pushed model is checked in tests/test_pipeline_e2e.py.
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from components import example_io
from components.evaluator import embedding_metrics as em
from components.example_gen import digits, readers
from components.serving import calibration, export, gallery, image_guard_test
from components.serving.settings import ServingSettings
from components.transform import preprocessing


class _Projection(tf.Module):
    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(1)
        self.weights = tf.Variable(rng.normal(size=(64, 16)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(self, examples):
        spec = {"image": tf.io.FixedLenFeature([], tf.string)}
        images = tf.io.parse_example(examples, spec)["image"]
        pixels = preprocessing.decode_images(images, 8, 1)  # As Transform's graph decodes.
        flat = tf.reshape(pixels, [-1, 64])
        return {"embedding": tf.math.l2_normalize(flat @ self.weights, axis=1)}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    trained = str(root / "trained")
    module = _Projection()
    tf.saved_model.save(module, trained, signatures={"serving_default": module.serve})
    idx_dir = digits.materialize(str(root / "digits"))
    records = list(gallery.dataset_records(idx_dir))
    labels = np.array(
        [
            tf.train.Example.FromString(r).features.feature["label"].bytes_list.value[0]
            for r in records
        ]
    ).astype(str)
    return root, trained, idx_dir, np.array(records), labels


def _export(data, name, with_gallery=True, **settings):
    root, trained, idx_dir, records, labels = data
    settings = ServingSettings(**settings)
    known = labels != "9"  # identity 9 stays out of the gallery
    train, held_out = np.arange(len(labels)) % 5 != 0, np.arange(len(labels)) % 5 == 0
    embeddings, gallery_labels, note = gallery.build_gallery(
        trained,
        tf.data.Dataset.from_tensor_slices(records[train & known]),
        settings.gallery_mode,
        settings.max_gallery,
    )
    # Calibrate like the Evaluator: threshold_at_far on the held-out split's pairs.
    eval_emb, eval_labels, _ = example_io.embed_examples(
        trained, tf.data.Dataset.from_tensor_slices(records[held_out])
    )
    metrics = em.verification_metrics(eval_emb, eval_labels, far_targets=settings.far_targets())
    facts = calibration.calibrate(metrics, settings)
    export_dir = str(root / name)
    export.export_serving_model(
        trained,
        export_dir,
        threshold=facts["threshold"],
        max_image_pixels=settings.max_image_pixels,
        calibration={**facts, "gallery_size": len(gallery_labels), "note": note},
        gallery=(embeddings, gallery_labels) if with_gallery else None,
        top_k=settings.top_k,
    )
    return export_dir, facts, held_out, (embeddings, gallery_labels), eval_emb


def test_signatures_match_numpy_distances_and_the_calibrated_threshold(data):
    _, _, _, records, labels = data
    export_dir, facts, held_out, (gallery_emb, gallery_labels), eval_emb = _export(data, "images")
    model = tf.saved_model.load(export_dir)
    assert set(model.signatures) == {"serving_default", "verify", "identify"}
    queries = records[held_out]
    embedding = model.signatures["serving_default"](examples=queries)["embedding"].numpy()
    np.testing.assert_allclose(embedding, eval_emb, atol=1e-6)

    a, b = queries[:-1], queries[1:]
    verify = model.signatures["verify"](examples_a=a, examples_b=b)
    first = np.arange(len(a))
    expected = em.pair_distances(embedding, first, first + 1)
    np.testing.assert_allclose(verify["distance"].numpy(), expected, atol=1e-5)
    assert verify["threshold"].shape == (len(a),)  # batch-first, like every output
    np.testing.assert_allclose(verify["threshold"].numpy(), facts["threshold"], rtol=1e-6)
    np.testing.assert_array_equal(verify["same"].numpy(), expected <= facts["threshold"])
    assert facts["far"] == 1e-3 and facts["notes"] == []

    identify = model.signatures["identify"](examples=queries)
    names = identify["identities"].numpy().astype(str)
    distances = identify["distances"].numpy()
    assert names.shape == distances.shape == (len(queries), 5)
    assert np.all(np.diff(distances, axis=1) >= -1e-6)
    full = np.linalg.norm(embedding[:, None] - gallery_emb[None], axis=-1)
    np.testing.assert_allclose(distances[:, 0], full.min(axis=1), atol=1e-5)
    np.testing.assert_array_equal(names[:, 0], gallery_labels[full.argmin(axis=1)])
    np.testing.assert_array_equal(identify["known"].numpy(), distances[:, 0] <= facts["threshold"])

    asset = json.load(open(os.path.join(export_dir, "assets.extra", "calibration.json")))
    assert asset["threshold"] == pytest.approx(facts["threshold"])
    assert export.read_calibration(export_dir)["gallery_size"] == len(gallery_labels)


def test_oversized_images_are_refused_by_every_signature(data):
    export_dir, *_ = _export(data, "small_limit", max_image_pixels=1000, with_gallery=False)
    model = tf.saved_model.load(export_dir)
    assert "identify" not in model.signatures
    bomb = tf.constant(
        [
            readers.make_example(
                image_guard_test.png_declaring(20000, 20000), "x"
            ).SerializeToString()
        ]
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="20000 x 20000 = 400000000 pixels"):
        model.signatures["serving_default"](examples=bomb)
    with pytest.raises(tf.errors.InvalidArgumentError, match="above the limit of 1000"):
        model.signatures["verify"](examples_a=bomb, examples_b=bomb)


def test_centroid_gallery_has_one_unit_entry_per_identity(data):
    export_dir, *_, (gallery_emb, gallery_labels), _ = _export(
        data, "centroids", gallery_mode="centroids", top_k=20
    )
    assert sorted(gallery_labels) == [str(d) for d in range(9)]
    np.testing.assert_allclose(np.linalg.norm(gallery_emb, axis=1), 1.0, atol=1e-6)
    model = tf.saved_model.load(export_dir)
    out = model.signatures["identify"](examples=data[3][:4])
    assert out["identities"].shape == (4, 9)  # k is capped at the gallery size


def test_gallery_cap_keeps_a_random_subset_and_says_so():
    emb = np.arange(20, dtype=np.float32).reshape(10, 2)
    kept, labels, note = gallery.cap(emb, np.arange(10).astype(str), 4)
    assert kept.shape == (4, 2) and len(set(labels)) == 4 and "--max-gallery" in note
    assert gallery.cap(emb, np.arange(10), 10)[2] is None


def test_calibration_falls_back_to_a_far_the_pairs_can_measure():
    settings = ServingSettings(far=1e-3)
    metrics = {em.threshold_name(f): f for f in settings.far_targets()}
    metrics.update({em.val_name(f): 0.5 for f in settings.far_targets()})
    facts = calibration.calibrate({**metrics, em.NEGATIVE_PAIRS: 50.0}, settings)
    assert facts["far"] == 1e-1 and facts["threshold"] == 1e-1
    assert "50 negative eval pairs cannot measure FAR 0.001" in facts["notes"][0]
    assert facts["negative_pairs"] == 50
    plenty = {**metrics, em.NEGATIVE_PAIRS: 5000.0}
    assert calibration.calibrate(plenty, settings)["far"] == 1e-3
    with pytest.raises(ValueError, match="threshold_at_far_1e-4"):
        calibration.calibrate({**metrics, em.NEGATIVE_PAIRS: 1e6}, ServingSettings(far=1e-4))
    with pytest.raises(ValueError, match="negative_pairs"):
        calibration.calibrate(metrics, settings)


@pytest.mark.parametrize(
    "bad",
    [{"far": 0.0}, {"far": 1.5}, {"top_k": 0}, {"gallery_mode": "x"}, {"max_image_pixels": -1}],
)
def test_settings_refuse_bad_values(bad):
    with pytest.raises(ValueError):
        ServingSettings(**bad)


def test_gallery_datasets_read_in_every_supported_format(data, tmp_path):
    _, _, idx_dir, records, labels = data
    assert len(records) == 1797 and len(set(labels)) == 10
    tfrecords = tmp_path / "tfrecords"
    tfrecords.mkdir()
    with tf.io.TFRecordWriter(str(tfrecords / "part.tfrecord")) as writer:
        for record in records[:50]:
            writer.write(record)
    read = [tf.train.Example.FromString(r) for r in gallery.dataset_records(str(tfrecords))]
    assert read == [tf.train.Example.FromString(r) for r in records[:50]]
    folders = tmp_path / "folders"
    for n, record in enumerate(records[:12]):
        feature = tf.train.Example.FromString(record).features.feature
        folder = folders / feature["label"].bytes_list.value[0].decode()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{n}.png").write_bytes(feature["image"].bytes_list.value[0])
    from_folders = [tf.train.Example.FromString(r) for r in gallery.dataset_records(str(folders))]
    assert len(from_folders) == 12
    with pytest.raises(ValueError, match="not a directory"):
        list(gallery.dataset_records(str(tmp_path / "missing")))
