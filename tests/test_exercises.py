"""The shared pieces of the chapters' exercise checkers."""

from __future__ import annotations

import math

from mlnotes.exercises import as_float, report


def test_as_float_reads_numbers_and_rejects_the_rest():
    assert as_float(3) == 3.0 and as_float("2.5") == 2.5
    assert as_float(None) is None and as_float("four") is None and as_float([1, 2]) is None
    assert as_float(math.nan) is None and as_float(math.inf) is None


def test_report_prints_the_message_that_matches(capsys):
    assert report(True, "right", "hint") is True
    assert report(False, "right", "hint") is False
    assert capsys.readouterr().out == "right\nhint\n"
