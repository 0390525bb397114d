"""TF Serving's own SavedModel loader, built from the locked TensorFlow wheel, driven from Python.

`tf_serving_loader.cc` calls `tensorflow::LoadSavedModel(..., {"serve"}, ...)` and
`Session::Run` on each SignatureDef's tensor names, as TF Serving does; the wheel ships
`libtensorflow_cc.so.2`, `libtensorflow_framework.so.2` and the headers. `build()` compiles it
once per source, TensorFlow version and wheel location (its rpath) into ~/.cache/siamese-tfx
(about 20 s on 2 cores) and raises LoaderBuildError, with the compiler's output, when it cannot.
`ServingLoader(model_dir)` keeps one loaded model and answers `call(signature, {input: [bytes,
...]})` with numpy outputs or raises ServingError with TF's status code, and the process goes on
serving, as TF Serving would.
"""

import hashlib
import json
import os
import shutil
import subprocess

import numpy as np

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tf_serving_loader.cc")
_DTYPES = {"float": np.float32, "bool": np.bool_, "int64": np.int64, "int32": np.int32}


class LoaderBuildError(RuntimeError):
    """The C++ loader could not be compiled against the installed TensorFlow."""


class ServingError(RuntimeError):
    """A request the loaded model refused (TF's status code and message)."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code


def _flags() -> tuple[list[str], list[str], str]:
    import tensorflow as tf

    library_dir = os.path.dirname(tf.__file__)
    link = [
        f"-L{library_dir}",
        "-Wl,--no-as-needed",  # Without it the session factory is dropped: "No session factory".
        "-l:libtensorflow_framework.so.2",
        "-l:libtensorflow_cc.so.2",
        f"-Wl,-rpath,{library_dir}",
    ]
    return tf.sysconfig.get_compile_flags(), link, tf.__version__


def build(cache_dir: str | None = None) -> str:
    """The loader's executable, compiled on first use; raises LoaderBuildError if it cannot be."""
    compile_flags, link_flags, version = _flags()
    with open(SOURCE, "rb") as f:
        digest = hashlib.sha256(f.read() + version.encode() + link_flags[0].encode())
    digest = digest.hexdigest()[:16]
    cache_dir = cache_dir or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "siamese-tfx"
    )
    binary = os.path.join(cache_dir, f"tf_serving_loader-{digest}")
    if os.path.exists(binary):
        return binary
    compiler = shutil.which(os.environ.get("CXX", "g++"))
    if not compiler:
        raise LoaderBuildError("no C++ compiler: install g++ (or set CXX) to build the loader")
    os.makedirs(cache_dir, exist_ok=True)
    partial = f"{binary}.partial-{os.getpid()}"
    command = [compiler, "-O1", *compile_flags, SOURCE, "-o", partial, *link_flags]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise LoaderBuildError(
            f"building {SOURCE} failed ({' '.join(command)}):\n{done.stderr[-4000:]}"
        )
    os.replace(partial, binary)
    return binary


def _framed(signature: str, inputs: dict[str, list[bytes]], repeat: int) -> bytes:
    parts = [f"{signature} {repeat} {len(inputs)}\n".encode()]
    for key, values in inputs.items():
        parts.append(f"{key} {len(values)}\n".encode())
        for value in values:
            parts += [f"{len(value)}\n".encode(), bytes(value), b"\n"]
    return b"".join(parts)


class ServingLoader:
    """One SavedModel loaded by TensorFlow's C++ loader, in a child process."""

    def __init__(self, model_dir: str, binary: str | None = None):
        self._process = subprocess.Popen(
            [binary or build(), model_dir],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        header = self._read()
        if not header.get("loaded"):
            self.close()
            raise ServingError("LOAD", header.get("error", "the loader printed nothing"))
        self.load_ms = header["load_ms"]
        self.rss_kb = header["rss_kb"]
        self.signatures = header["signatures"]

    def _read(self) -> dict:
        line = self._process.stdout.readline()
        if not line:
            self._process.wait(timeout=30)
            stderr = self._process.stderr.read().decode(errors="replace")[-2000:]
            raise RuntimeError(
                f"the loader exited with code {self._process.returncode}: {stderr.strip()}"
            )
        return json.loads(line)

    def call_timed(self, signature: str, inputs: dict[str, list[bytes]], repeat: int = 1):
        """(outputs as numpy arrays, milliseconds of each of `repeat` Session::Run calls)."""
        self._process.stdin.write(_framed(signature, inputs, repeat))
        self._process.stdin.flush()
        answer = self._read()
        if not answer["ok"]:
            raise ServingError(answer["code"], answer["error"])
        outputs = {}
        for key, tensor in answer["outputs"].items():
            dtype = _DTYPES.get(tensor["dtype"], object)
            values = np.array(tensor["values"], dtype=dtype)
            if dtype is object:
                values = np.array([v.encode("latin-1") for v in tensor["values"]], dtype=object)
            outputs[key] = values.reshape(tensor["shape"])
        return outputs, answer["ms"]

    def call(self, signature: str, inputs: dict[str, list[bytes]]) -> dict[str, np.ndarray]:
        return self.call_timed(signature, inputs)[0]

    def close(self):
        if self._process.poll() is None:
            self._process.stdin.close()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
