"""Enrol and forget people in a serving dir's gallery without retraining.

Each change writes a new version into the serving dir: the newest version's weights, threshold,
pixel limit and top-k, with its gallery changed and `calibration.json`'s `gallery_changes`
saying what changed and when. TF Serving serves it like a push (the highest version wins).

Each change also updates the serving dir's ledger (components.serving.gallery_ledger), which
the next training run's ServingModel applies: enrolled people are embedded again by the new
model; forgotten ones are kept out of every later gallery, one built from the training data
included.
Forgetting also deletes every other version whose gallery holds the person: a version that
still holds them could be served again (a rollback, a version policy, a pod that restarts on an
old copy), so it is not kept. The model's weights are not a gallery: to forget what a person's
images taught the network, take them out of the training data before the next run.

A change that failed part-way re-runs: each step checks what is done already.
"""

import datetime
import hashlib
import json
import os
import tempfile

import numpy as np
import tensorflow as tf

from components import example_io
from components.baseline import served_baseline
from components.baseline.served_baseline import SAVED_MODEL, newest_version
from components.serving import export, gallery, gallery_ledger, pusher
from components.serving.settings import ServingSettings


class GalleryChangeError(ValueError):
    """A change that cannot be made; the message names the serving dir or the input."""


def _image_key(record: bytes) -> tuple[str, str]:
    """(identity, SHA-256 of the image): what a record is (its serialized bytes are not
    deterministic: a tf.Example's features are a map)."""
    example = tf.train.Example.FromString(record)
    image = hashlib.sha256(example_io.image_of(example)).hexdigest()
    return example_io.label_of(example), image


def _records_digest(records: list[bytes]) -> str:
    keys = sorted(_image_key(r) for r in records)
    return hashlib.sha256(json.dumps(keys).encode()).hexdigest()


def _newest(serving_dir: str) -> tuple[str, tuple[np.ndarray, np.ndarray], dict]:
    version_dir = newest_version(serving_dir)
    if version_dir is None:
        raise GalleryChangeError(f"{serving_dir}: no served version (push a model first)")
    entries = gallery_ledger.version_gallery(version_dir)
    if entries is None:
        raise GalleryChangeError(f"{version_dir}: no gallery (the model was served --no-gallery)")
    return version_dir, entries, export.read_calibration(version_dir) or {}


def _write_version(serving_dir, version_dir, entries, calibration, change) -> str:
    """A new version: version_dir's model with `entries` as its gallery; returns its path."""
    embeddings, names = entries
    calibration = {
        **calibration,
        "gallery_size": int(len(names)),
        "gallery_identities": int(np.unique(names).size),
        "gallery_changes": [*calibration.get("gallery_changes", []), change],
    }
    number = max(int(datetime.datetime.now().timestamp()), int(os.path.basename(version_dir)) + 1)
    destination = os.path.join(serving_dir, str(number))
    with tempfile.TemporaryDirectory() as scratch:
        export_dir = os.path.join(scratch, "model")
        export.export_with_gallery(version_dir, export_dir, (embeddings, names), calibration)
        pusher.push(export_dir, destination)
    return destination


def _delete_version(version_dir: str) -> None:
    """saved_model.pb first, so that a deletion cut short never leaves a complete-looking
    version (the served baseline and the Pusher's rule: complete once saved_model.pb is there)."""
    model = os.path.join(version_dir, SAVED_MODEL)
    if tf.io.gfile.exists(model):
        tf.io.gfile.remove(model)
    tf.io.gfile.rmtree(version_dir)


def enrol(serving_dir: str, data: str) -> dict:
    """Adds the people of `data` (any dataset layout) to the newest version's gallery."""
    version_dir, (embeddings, names), calibration = _newest(serving_dir)
    try:
        records = list(gallery.dataset_records(data))
    except (OSError, ValueError, tf.errors.OpError) as error:
        raise GalleryChangeError(f"{data}: {str(error).splitlines()[0]}") from None
    if not records:
        raise GalleryChangeError(f"{data}: no images to enrol")
    digest = _records_digest(records)
    done = [c for c in calibration.get("gallery_changes", []) if c.get("records_sha256") == digest]
    by_person: dict[str, list[bytes]] = {}
    for record in records:
        name = example_io.label_of(tf.train.Example.FromString(record))
        by_person.setdefault(name, []).append(record)
    people = sorted(by_person)
    if not done:
        new_embeddings, labels, _ = example_io.embed_examples(
            version_dir, tf.data.Dataset.from_tensor_slices(records)
        )
        if calibration.get("gallery_mode") == gallery.CENTROIDS:
            already = sorted(set(people) & set(names))
            if already:
                raise GalleryChangeError(
                    f"{data}: {already[0]} is in the gallery already (a centroid gallery holds one "
                    "entry a person: forget them first, or enrol under a new name)"
                )
            new_embeddings, labels = gallery.centroids(new_embeddings, labels)
        limit = int(calibration.get("max_gallery", ServingSettings.max_gallery))
        if len(names) + len(labels) > limit:
            raise GalleryChangeError(
                f"{data}: the gallery would hold {len(names) + len(labels)} entries, above its "
                f"limit of {limit} (--max-gallery at training)"
            )
        change = {
            "change": "enrol",
            "at": gallery_ledger.now(),
            "source": data,
            "identities": people,
            "images": len(records),
            "records_sha256": digest,
        }
        entries = (np.concatenate([embeddings, new_embeddings]), np.concatenate([names, labels]))
        version_dir = _write_version(serving_dir, version_dir, entries, calibration, change)
    # The ledger after the version: a re-run after a failure here finds the change in the
    # newest version's calibration.json and only completes the ledger.
    for name, person_records in by_person.items():
        path = gallery_ledger.enrolled_path(serving_dir, name)
        previous = []
        if tf.io.gfile.exists(path):
            previous = [r.numpy() for r in tf.data.TFRecordDataset(path)]
        seen = {_image_key(r) for r in previous}
        added = [r for r in person_records if _image_key(r) not in seen]
        if added:
            gallery_ledger.write_enrolled(serving_dir, name, previous + added)
    keys = gallery_ledger.forgotten(serving_dir)
    if keys & {gallery_ledger.identity_key(p) for p in people}:
        gallery_ledger.write_forgotten(
            serving_dir, keys - {gallery_ledger.identity_key(p) for p in people}
        )
    return {
        "version": version_dir,
        "identities": people,
        "images": len(records),
        "resumed": bool(done),
    }


def _without_name(calibration: dict, name: str) -> dict:
    """calibration with `name` replaced by its key in the earlier changes that listed it, and
    their source path too when the name is part of it (a folder named after the person)."""
    key = gallery_ledger.identity_key(name)
    changes = []
    for change in calibration.get("gallery_changes", []):
        if name in change.get("identities", ()):
            change = {
                **change,
                "identities": [key if n == name else n for n in change["identities"]],
            }
            if name in change.get("source", ""):
                change["source"] = change["source"].replace(name, key)
        changes.append(change)
    return {**calibration, "gallery_changes": changes}


def forget(serving_dir: str, name: str) -> dict:
    """Removes `name` from the gallery: a new version without them, their enrolled images
    deleted, their key kept out of later galleries, and every other version that holds them
    deleted."""
    key = gallery_ledger.identity_key(name)
    holding = []
    for version_dir in served_baseline.versions(serving_dir):
        entries = gallery_ledger.version_gallery(version_dir)
        if entries is not None and name in set(entries[1]):
            holding.append(version_dir)
    enrolled = gallery_ledger.enrolled_path(serving_dir, name)
    if not holding and not tf.io.gfile.exists(enrolled):
        if key in gallery_ledger.forgotten(serving_dir):
            return {"version": newest_version(serving_dir), "removed_versions": [], "done": True}
        raise GalleryChangeError(f"{serving_dir}: no version's gallery holds {name!r}")
    version_dir, (embeddings, names), calibration = _newest(serving_dir)
    keep = names != name
    if not keep.any():
        raise GalleryChangeError(
            f"{version_dir}: {name!r} is the gallery's only identity (it cannot be empty)"
        )
    gallery_ledger.write_forgotten(serving_dir, gallery_ledger.forgotten(serving_dir) | {key})
    if version_dir in holding:
        calibration = _without_name(calibration, name)
        change = {
            "change": "forget",
            "at": gallery_ledger.now(),
            "identity_sha256": key,
            "entries": int((~keep).sum()),
        }
        entries = (embeddings[keep], names[keep])
        version_dir = _write_version(serving_dir, version_dir, entries, calibration, change)
    if tf.io.gfile.exists(enrolled):
        tf.io.gfile.remove(enrolled)
    removed = [v for v in holding if v != version_dir]
    for old in removed:
        _delete_version(old)
    return {"version": version_dir, "removed_versions": removed, "done": False}
