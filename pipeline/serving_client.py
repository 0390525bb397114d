"""A client of the served model over TF Serving's REST API, in plain Python (no TensorFlow).

Builds the two request forms TF Serving (and KServe's V1 protocol) take for each signature, with
images as serialized tf.Example (`keys.IMAGE`, PNG or JPEG bytes) in TF Serving's base64 form
{"b64": ...}:
  row:      {"signature_name": S, "instances": [{input: {"b64": ...}, ...}, ...]}
            one instance per image (serving_default, identify) or per pair (verify); the answer
            is {"predictions": [{output: value, ...}, ...]}, one per instance;
  columnar: {"signature_name": S, "inputs": {input: [{"b64": ...}, ...]}}
            the answer is {"outputs": {output: [...]}}.
A signature with one output (serving_default) answers with the values alone, without the
output's name: {"predictions": [[...], ...]} and {"outputs": [[...], ...]}.
`predict` posts one to http://HOST:8501/v1/models/NAME:predict. The tf.Example is written by
hand (protobuf wire format: Example.features -> Features.feature map -> BytesList), so a
client needs only the standard library.
"""

import base64
import json
import urllib.request

from components import keys

ROW, COLUMNAR = "row", "columnar"


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def serialized_example(image: bytes, label: str = "") -> bytes:
    """tf.train.Example{features: {image: bytes_list[image], label: bytes_list[label]}}."""

    def bytes_feature(value: bytes) -> bytes:  # Feature.bytes_list (1) -> BytesList.value (1)
        return _field(1, _field(1, value))

    entries = b"".join(
        _field(1, _field(1, name.encode()) + _field(2, bytes_feature(value)))
        for name, value in ((keys.IMAGE, image), (keys.LABEL, label.encode()))
    )
    return _field(1, entries)  # Example.features (1) -> Features.feature map entries (1)


def _b64(image: bytes) -> dict:
    return {"b64": base64.b64encode(serialized_example(image)).decode()}


def signature_inputs(signature: str, images: list[bytes]) -> dict[str, list[bytes]]:
    """Each input of `signature` -> its images; verify takes pairs (A1 B1 A2 B2 ...)."""
    if signature == keys.VERIFY:
        if len(images) % 2:
            raise ValueError(f"verify takes pairs of images, got {len(images)}")
        return {keys.EXAMPLES_A: images[0::2], keys.EXAMPLES_B: images[1::2]}
    if signature not in keys.SIGNATURES:
        raise ValueError(f"unknown signature {signature!r}; the model has {keys.SIGNATURES}")
    return {keys.EXAMPLES: list(images)}


def request(signature: str, images: list[bytes], form: str = ROW) -> dict:
    """The JSON body of a predict request for `signature` on encoded images."""
    inputs = signature_inputs(signature, images)
    if form == COLUMNAR:
        columns = {name: [_b64(image) for image in values] for name, values in inputs.items()}
        return {"signature_name": signature, "inputs": columns}
    if form != ROW:
        raise ValueError(f"form must be {ROW} or {COLUMNAR}, got {form!r}")
    rows = [dict(zip(inputs, values, strict=True)) for values in zip(*inputs.values(), strict=True)]
    instances = [{name: _b64(image) for name, image in row.items()} for row in rows]
    return {"signature_name": signature, "instances": instances}


def predict(url: str, signature: str, images: list[bytes], form: str = ROW) -> dict:
    """POSTs the request to a TF Serving REST endpoint (…/v1/models/NAME:predict)."""
    body = json.dumps(request(signature, images, form)).encode()
    http = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(http, timeout=60) as response:  # noqa: S310 (the user's URL)
        return json.load(response)
