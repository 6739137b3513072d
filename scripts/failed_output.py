#!/usr/bin/env python3
"""Prints, after a failed ctest run, the output of each failed test again
(its last LINES lines), read from BUILD/Testing/Temporary/LastTest.log.

ctest --output-on-failure prints a failure where it happens, in the middle of
hundreds of lines; a CI log that keeps only its head and tail loses it. This
repeats those outputs at the end. Usage: failed_output.py BUILD [LINES]"""
import os
import re
import sys


def failures(log_text):
    """[(name, output lines)] of the tests the log records as failed."""
    out = []
    name, lines, in_output = None, [], False
    for line in log_text.splitlines():
        m = re.match(r"^\d+/\d+ Test: (.+)$", line)
        if m:
            name, lines, in_output = m.group(1), [], False
        elif name is not None and line == "Output:":
            in_output = True
        elif in_output and line == "<end of output>":
            in_output = False
        elif in_output:
            lines.append(line)
        elif name is not None and (line.startswith("Test Failed") or line.startswith("Test Not Run")):
            out.append((name, [l for l in lines if not l.startswith("-----")]))
            name = None
    return out


def main():
    build = sys.argv[1]
    keep = int(sys.argv[2]) if len(sys.argv) > 2 else 60
    path = os.path.join(build, "Testing", "Temporary", "LastTest.log")
    try:
        with open(path, errors="replace") as f:
            text = f.read()
    except OSError as e:
        print("failed_output: cannot read %s: %s" % (path, e))
        return
    for name, lines in failures(text):
        shown = lines[-keep:]
        print("==== failed: %s (last %d of %d lines) ====" % (name, len(shown), len(lines)))
        print("\n".join(shown))
    print("==== end of failed tests' output ====")


if __name__ == "__main__":
    main()
