"""`siamese-tfx gallery`: paths checked before TensorFlow, one line each; a change end to end on
the command line is in components/serving/gallery_changes_test.py and the e2e test."""

import subprocess
import sys

from pipeline import cli


def test_a_missing_serving_dir_or_dataset_is_one_line(tmp_path, capsys):
    assert cli.main(["gallery", "forget", "--serving-dir", str(tmp_path / "x"), "--identity", "a"])
    err = capsys.readouterr().err.strip()
    assert (
        err
        == f"siamese-tfx gallery forget: error: --serving-dir {tmp_path / 'x'}: no such directory"
    )
    code = cli.main(["gallery", "enrol", "--serving-dir", str(tmp_path), "--data", "nowhere"])
    assert code == 1
    assert capsys.readouterr().err.strip().endswith("--data nowhere: no such directory")


def test_a_serving_dir_without_versions_is_refused_in_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "gallery", "forget", "--serving-dir", str(tmp_path),
         "--identity", "ada"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"siamese-tfx gallery forget: error: {tmp_path}: no version's gallery holds 'ada'"
    ]
