"""Copies folders on any file system TensorFlow reads and writes (local, gs://, s3://)."""

import os

import tensorflow as tf


def copy_tree(source: str, destination: str) -> None:
    """Recursive copy with tf.io.gfile; directories are made, never copied as objects."""
    tf.io.gfile.makedirs(destination)
    for name in tf.io.gfile.listdir(source):
        name = name.rstrip("/")
        if not name:
            continue
        path = os.path.join(source, name)
        target = os.path.join(destination, name)
        if tf.io.gfile.isdir(path):
            copy_tree(path, target)
        else:
            tf.io.gfile.copy(path, target, overwrite=True)
