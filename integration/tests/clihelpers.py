"""Running `stackci` in-process as a user would, for the command tests."""

import json

from stackci.cli import main


def run_json(capsys, argv):
    """Exit code and the JSON document the command printed."""
    code = main(argv)
    return code, json.loads(capsys.readouterr().out)


def expect_one_line_error(capsys, argv, code, pattern):
    """The command exits `code` with one `stackci: error:` line containing `pattern`."""
    assert main(argv) == code
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stackci: error: "), captured.err
    assert pattern in lines[0]
    return lines[0]
