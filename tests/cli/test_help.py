"""``--help`` texts: docstrings reflowed, every command documented."""

from __future__ import annotations

from typer.testing import CliRunner

from detector.cli import _reflow, app

runner = CliRunner()
WIDE = {"COLUMNS": "200", "TERMINAL_WIDTH": "200"}  # rich reads the width from the environment


def test_reflow_joins_wrapped_lines_and_keeps_lists_and_paragraphs():
    doc = """First line
    goes on here.

    Second paragraph
    wraps too.

    - item one
    - item two
      indented continuation
    """
    assert _reflow(doc) == ("First line goes on here.\n\nSecond paragraph wraps too.\n\n"
                            "- item one\n- item two\n  indented continuation")


def test_help_texts_are_not_broken_where_the_docstring_was_wrapped():
    # a wide terminal: a sentence that the docstring wraps in the middle comes out on one line
    top = runner.invoke(app, ["--help"], env=WIDE)
    assert top.exit_code == 0
    assert "per exam session the timeline, the environment against the baseline, and each alert" in top.stdout
    report = runner.invoke(app, ["report", "--help"], env=WIDE)
    assert "nothing is loaded from the network when it is opened" in report.stdout
    for cmd in ("spectrum", "survey", "replay", "demo", "monitor", "locate", "report", "serve", "sim", "calibrate", "plan", "db",
                "doctor"):
        r = runner.invoke(app, [cmd, "--help"], env=WIDE)
        assert r.exit_code == 0 and "Usage: examwatch " + cmd in " ".join(r.stdout.split()), cmd


def test_shell_completion_is_offered():
    top = runner.invoke(app, ["--help"], env=WIDE)
    assert "--install-completion" in top.stdout and "--show-completion" in top.stdout
    r = runner.invoke(app, ["--show-completion", "bash"], env={**WIDE, "SHELL": "/bin/bash"})
    assert r.exit_code == 0 and "complete" in r.stdout and "examwatch" in r.stdout.lower()
