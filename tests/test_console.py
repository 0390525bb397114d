"""The quiet console: component lines from LocalDagRunner's records, everything else to the log."""

import logging
import os
import warnings

from pipeline import console


def test_component_records_become_start_and_end_lines_with_a_count(tmp_path, capsys):
    log_path = str(tmp_path / "logs" / "run.log")
    with console.run_console(log_path, count=lambda component: f"{len(component)} things"):
        log = logging.getLogger("absl")
        log.info("Component %s is running.", "StatisticsGen")
        log.info("Statistics computed")  # Library chatter: log file only.
        log.info("Component %s is finished.", "StatisticsGen")
        log.info("Component %s is running.", "Transform")
        log.info("A cached execution %d is used.", 7)
        log.info("Component %s is finished.", "Transform")
        log.info("Component %s is running.", "Trainer")
        print("epoch 1/2: loss 0.3")
        print("epoch 2/2: loss 0.2")
        log.info("Component %s is finished.", "Trainer")
        log.info("Component %s is running.", "Evaluator")
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" in ")[0] for line in lines] == [
        "StatisticsGen started ... done",
        "Transform started ... done",
        "Trainer started ...",
        "epoch 1/2: loss 0.3",
        "epoch 2/2: loss 0.2",
        "Trainer done",
        "Evaluator started ...",  # Ended by the end of the run.
    ]
    assert lines[0].endswith("s (13 things)") and lines[1].endswith("s (cached)")
    assert lines[5].endswith("s (2 epochs run)")
    with open(log_path) as f:
        assert "Statistics computed" in f.read()


def test_quiet_mode_sends_logging_warnings_and_stderr_to_the_log(tmp_path, capsys):
    log_path = str(tmp_path / "logs" / "run.log")
    with console.run_console(log_path) as progress:
        logging.getLogger("apache_beam").warning("beam says hello")
        warnings.warn("a library warning", RuntimeWarning, stacklevel=1)
        os.write(2, b"C++ logging on file descriptor 2\n")
        progress.component = "Trainer"  # As if the Trainer failed.
    os.write(2, b"after the run\n")
    captured = capsys.readouterr()
    assert captured.out == "" and "beam says hello" not in captured.err
    with open(log_path) as f:
        text = f.read()
    for line in ("beam says hello", "a library warning", "C++ logging on file descriptor 2"):
        assert line in text
    assert "after the run" not in text
    assert not logging.getLogger().handlers or all(
        not isinstance(h, console.Progress) for h in logging.getLogger().handlers
    )


def test_verbose_mode_also_shows_the_logging(tmp_path, capsys):
    with console.run_console(str(tmp_path / "run.log"), verbose=True):
        logging.getLogger("tfx").info("a library line")
    assert "a library line" in capsys.readouterr().err
    assert "a library line" in (tmp_path / "run.log").read_text()


def test_component_lines_survive_absl_raising_its_level_mid_run(tmp_path, capsys):
    from absl import logging as absl_logging

    with console.run_console(str(tmp_path / "run.log")):
        absl_logging.set_verbosity(absl_logging.WARNING)  # What parsing absl flags does.
        absl_logging.info("Component %s is running.", "Trainer")
    assert capsys.readouterr().out == "Trainer started ...\n"
