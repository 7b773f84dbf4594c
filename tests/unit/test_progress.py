"""Progress: a live bar on a terminal, plain lines when nobody is watching (CI)."""

from __future__ import annotations

import io

from reconciler.progress import Reporter


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_when_not_a_terminal():
    stream = io.StringIO()
    reporter = Reporter(stream)
    with reporter.track("applying", 2):
        reporter.step("succeeded: one")
        reporter.step("failed: two")
    assert stream.getvalue() == "succeeded: one\nfailed: two\n"


def test_a_bar_with_counts_on_a_terminal():
    stream = Terminal()
    reporter = Reporter(stream)
    with reporter.track("applying", 2):
        reporter.step("succeeded: one")
        reporter.step("succeeded: two")
    output = stream.getvalue()
    assert "applying" in output and "2/2" in output and "succeeded: two" in output


def test_reads_print_a_line_before_and_after_when_not_a_terminal():
    stream = io.StringIO()
    with Reporter(stream).waiting("reading yext"):
        assert stream.getvalue() == "reading yext ...\n", "shown before the wait, not after"
    lines = stream.getvalue().splitlines()
    assert lines[1].startswith("reading yext: done in ") and lines[1].endswith("s")


def test_reads_show_a_transient_spinner_on_a_terminal():
    stream = Terminal()
    with Reporter(stream).waiting("reading yext"):
        pass
    assert "reading yext" in stream.getvalue() and "done in" not in stream.getvalue()
