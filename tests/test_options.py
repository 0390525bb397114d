"""Options and data paths are checked before anything heavy runs: one line, exit status 1.

Each case (values that used to train, crash or be ignored) is refused by `run`
and by `compile kubeflow` alike, without importing TensorFlow, TFX or Beam.
"""

import json
import os
import signal
import struct
import subprocess
import sys
import textwrap

import pytest

from pipeline import cli, configs

COMPILE = [
    "compile",
    "kubeflow",
    "--image",
    "registry.example.com/siamese-tfx:1.0",
    "--pipeline-root",
    "gs://bucket/root",
    "--data",
    "gs://bucket/mnist",
    "--data-format",
    "idx",
    "--serving-dir",
    "gs://bucket/serving",
]
BAD_VALUES = [
    (["--epochs", "-1"], "--epochs -1", "from 1 to"),
    (["--margin", "-2"], "--margin -2.0", "> 0"),
    (["--embedding-dim", "0"], "--embedding-dim 0", "from 2 to"),
    (["--image-size", "0"], "--image-size 0", "from 8 to"),
    (["--learning-rate", "nan"], "--learning-rate nan", "finite number > 0"),
    (["--learning-rate", "0"], "--learning-rate 0.0", "> 0"),
    (["--eval-fraction", "1.5"], "--eval-fraction 1.5", "< 1"),
    (["--eval-fraction", "0"], "--eval-fraction 0.0", "> 0"),
    (["--triplet-strategy", "batch_all", "--soft-margin"], "--soft-margin", "hard margin"),
    (["--lower-bound", "1.2"], "--lower-bound 1.2", "<= 1"),
    (["--max-regression", "-0.1"], "--max-regression -0.1", ">= 0"),
    (["--floor-margin", "inf"], "--floor-margin inf", "finite"),
    (["--report-examples", "0"], "--report-examples 0", ">= 1"),
    (["--warmup-epochs", "-1"], "--warmup-epochs -1.0", ">= 0"),
]


def _one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and not captured.out, captured
    return lines[0]


@pytest.mark.parametrize("extra, named, allowed", BAD_VALUES, ids=[b[1] for b in BAD_VALUES])
def test_run_refuses_a_bad_value_in_one_line(tmp_path, capsys, extra, named, allowed):
    output_dir = tmp_path / "out"
    assert cli.main(["run", "--output-dir", str(output_dir), *extra]) == 1
    line = _one_line_error(capsys)
    assert line.startswith(f"siamese-tfx run: error: {named}") and allowed in line
    assert not output_dir.exists()  # Nothing started.


@pytest.mark.parametrize("extra, named, allowed", BAD_VALUES, ids=[b[1] for b in BAD_VALUES])
def test_compile_refuses_the_same_values_the_same_way(tmp_path, capsys, extra, named, allowed):
    output = tmp_path / "pipeline.yaml"
    assert cli.main([*COMPILE, "--output", str(output), *extra]) == 1
    line = _one_line_error(capsys)
    assert line.startswith(f"siamese-tfx compile kubeflow: error: {named}") and allowed in line
    assert not output.exists()


def test_eval_fraction_is_checked_for_idx_data_too(tmp_path, capsys):
    digits_idx = tmp_path / "mnist"
    digits_idx.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
        (digits_idx / name).write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x02\x00\x01")
    argv = ["run", "--data", str(digits_idx), "--output-dir", str(tmp_path / "o")]
    assert cli.main([*argv, "--eval-fraction", "1.5"]) == 1
    assert "--eval-fraction 1.5" in _one_line_error(capsys)


@pytest.mark.parametrize("layout", ["missing", "not_a_dataset", "no_images", "one_identity"])
def test_run_refuses_a_bad_data_path_before_starting(tmp_path, capsys, layout):
    data = tmp_path / "data"
    if layout == "not_a_dataset":
        data.write_text("not a folder")
    elif layout == "no_images":
        (data / "ann").mkdir(parents=True)
    elif layout == "one_identity":
        (data / "ann").mkdir(parents=True)
        (data / "ann" / "1.png").write_bytes(b"x")
    output_dir = tmp_path / "out"
    assert cli.main(["run", "--data", str(data), "--output-dir", str(output_dir)]) == 1
    line = _one_line_error(capsys)
    assert line.startswith(f"siamese-tfx run: error: --data {data}: ")
    assert not output_dir.exists()


def test_run_refuses_a_truncated_idx_file_in_one_line_naming_it(tmp_path, capsys):
    data = tmp_path / "mnist"
    data.mkdir()
    for prefix in ("train", "t10k"):
        images = struct.pack(">4I", 0x803, 2, 4, 4) + bytes(2 * 4 * 4)
        (data / f"{prefix}-images-idx3-ubyte").write_bytes(images)
        (data / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">2I", 0x801, 2) + b"\0\1")
    truncated = data / "t10k-images-idx3-ubyte"
    truncated.write_bytes(truncated.read_bytes()[:-5])
    output_dir = tmp_path / "out"
    assert cli.main(["run", "--data", str(data), "--output-dir", str(output_dir)]) == 1
    line = _one_line_error(capsys)
    assert line == (
        f"siamese-tfx run: error: --data {truncated}: file is 43 bytes but its header "
        "((2, 4, 4)) implies 48 bytes (truncated?)"
    )
    assert not output_dir.exists()


def test_validation_imports_nothing_heavy(tmp_path):
    """A bad value or path is refused before TensorFlow, TFX or Beam is imported."""
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / "x.tfrecord").write_bytes(b"not a TFRecord file" * 10)
    script = textwrap.dedent(
        f"""
        import json, sys
        from pipeline import cli
        codes = [
            cli.main(["run", "--output-dir", {str(tmp_path)!r}, "--epochs", "-1"]),
            cli.main(["run", "--data", {str(tmp_path / "missing")!r}]),
            cli.main(["run", "--data", {str(tmp_path / "records")!r}]),
            cli.main({COMPILE!r} + ["--output", "p.yaml", "--margin", "-2"]),
        ]
        heavy = sorted(
            name for name in sys.modules
            if name.split(".")[0] in ("tensorflow", "tfx", "apache_beam", "keras", "tf_keras")
        )
        print(json.dumps({{"codes": codes, "heavy": heavy}}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"codes": [1, 1, 1, 1], "heavy": []}


def test_a_second_run_on_a_directory_in_use_stops_at_once_and_names_the_other(tmp_path, capsys):
    output_dir = tmp_path / "out"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from pipeline import run_lock\n"
            f"with run_lock.output_dir_lock({str(output_dir)!r}):\n"
            "    print('locked', flush=True)\n"
            "    time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert cli.main(["run", "--output-dir", str(output_dir)]) == 1
        line = _one_line_error(capsys)
        assert f"in use by another run (pid {holder.pid})" in line
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # A killed run must not leave the lock behind.
        holder.wait()
    from pipeline import run_lock

    with run_lock.output_dir_lock(str(output_dir)):
        with open(configs.lock_path(str(output_dir))) as f:
            assert f.read().strip() == str(os.getpid())


@pytest.mark.parametrize(
    "where, problem",
    [
        ("a_file", "not a directory"),
        ("a_file/out", "a parent is not a directory"),
        ("/proc/forbidden/out", "cannot create it"),  # No directory can be made in /proc.
    ],
)
def test_an_unusable_output_dir_is_one_line_before_the_lock(tmp_path, capsys, where, problem):
    (tmp_path / "a_file").write_text("not a folder")
    output_dir = where if where.startswith("/") else str(tmp_path / where)
    assert cli.main(["run", "--output-dir", output_dir]) == 1
    line = _one_line_error(capsys)
    assert line.startswith(f"siamese-tfx run: error: --output-dir {output_dir}: {problem}")
