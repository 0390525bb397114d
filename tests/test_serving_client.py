"""The REST client's requests, row and columnar, fed to the served model as TF Serving feeds
them; and every output batch-first, which the row format needs.

TF Serving's REST handler (tensorflow_serving/util/json_tensor.cc) takes "instances" as one
row per example: each named input is the stack of the rows' values, and each output is split
back along its first dimension, an error when an output's first dimension is not the number
of instances. A signature with one output answers with its values alone, without the output's
name, in both forms. `serve_like_tf_serving` does the same with the loaded SavedModel.
"""

import base64

import numpy as np
import pytest
import tensorflow as tf

from components import keys
from components.example_gen import readers
from components.serving.export_test import _export, data  # noqa: F401 (fixture)
from pipeline import serving_client


def _bytes(value: dict) -> bytes:
    return base64.b64decode(value["b64"])


def serve_like_tf_serving(model, body: dict) -> dict:
    function = model.signatures[body["signature_name"]]
    if "instances" in body:
        rows = body["instances"]
        inputs = {name: tf.constant([_bytes(row[name]) for row in rows]) for name in rows[0]}
        outputs = function(**inputs)
        for name, tensor in outputs.items():
            if tensor.shape.rank == 0 or tensor.shape[0] != len(rows):
                raise ValueError(f"Tensor name: {name} has inconsistent batch size")
        # One output: each prediction is its value, not an object (json_tensor.cc,
        # `elements_are_objects = tensor_map.size() > 1`).
        if len(outputs) == 1:
            (tensor,) = outputs.values()
            return {"predictions": [tensor[i].numpy() for i in range(len(rows))]}
        return {
            "predictions": [
                {name: tensor[i].numpy() for name, tensor in outputs.items()}
                for i in range(len(rows))
            ]
        }
    inputs = {
        name: tf.constant([_bytes(value) for value in values])
        for name, values in body["inputs"].items()
    }
    outputs = {name: tensor.numpy() for name, tensor in function(**inputs).items()}
    return {"outputs": next(iter(outputs.values())) if len(outputs) == 1 else outputs}


def pngs(count: int) -> list[bytes]:
    rng = np.random.default_rng(0)
    return [readers.encode_png(rng.integers(0, 256, (8, 8), dtype=np.uint8)) for _ in range(count)]


def test_the_hand_written_example_is_a_tf_example():
    image = pngs(1)[0]
    example = tf.train.Example.FromString(serving_client.serialized_example(image, "ann"))
    expected = tf.train.Example.FromString(readers.make_example(image, "ann").SerializeToString())
    assert example == expected


@pytest.mark.parametrize("signature", keys.SIGNATURES)
def test_row_and_columnar_requests_give_the_same_answers(data, signature):  # noqa: F811
    export_dir, *_ = _export(data, "client")
    model = tf.saved_model.load(export_dir)
    images = pngs(6)
    rows = serve_like_tf_serving(model, serving_client.request(signature, images, "row"))
    columns = serve_like_tf_serving(model, serving_client.request(signature, images, "columnar"))
    count = 3 if signature == keys.VERIFY else 6
    assert len(rows["predictions"]) == count
    if signature == keys.SERVING_DEFAULT:  # One output: values without the output's name.
        np.testing.assert_array_equal(np.stack(rows["predictions"]), columns["outputs"])
        assert columns["outputs"].shape == (count, 16)
        return
    for name, column in columns["outputs"].items():
        assert column.shape[0] == count, name
        for i, row in enumerate(rows["predictions"]):
            np.testing.assert_array_equal(row[name], column[i])


def test_every_output_of_every_signature_is_batch_first(data):  # noqa: F811
    export_dir, *_ = _export(data, "batch_first")
    model = tf.saved_model.load(export_dir)
    assert set(model.signatures) == set(keys.SIGNATURES)
    for name, function in model.signatures.items():
        for output, spec in function.structured_outputs.items():
            assert spec.shape.rank >= 1 and spec.shape[0] is None, (name, output, spec.shape)


def test_requests_refuse_what_the_model_cannot_take():
    with pytest.raises(ValueError, match="pairs"):
        serving_client.request(keys.VERIFY, pngs(3))
    with pytest.raises(ValueError, match="unknown signature"):
        serving_client.request("classify", pngs(1))
    with pytest.raises(ValueError, match="form must be"):
        serving_client.request(keys.SERVING_DEFAULT, pngs(1), "rows")
