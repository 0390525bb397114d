"""The epoch line's percentages."""

from components.trainer import callbacks


def test_the_epoch_line_never_rounds_a_share_still_teaching_to_zero():
    assert callbacks.percent(0.379) == "37.9%"
    assert callbacks.percent(0.0) == "0.0%"
    assert callbacks.percent(0.000021) == "0.0021%"
    assert callbacks.percent(0.001) == "0.1%"
