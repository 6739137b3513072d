#!/usr/bin/env python3
"""Prints, after a failed ctest run, the output of each failed test again
(its last LINES lines): the names from BUILD/Testing/Temporary/
LastTestsFailed.log, the outputs from LastTest.log.

ctest --output-on-failure prints a failure where it happens, in the middle of
hundreds of lines; a CI log that keeps only its head and tail loses it. This
repeats those outputs at the end. Usage: failed_output.py BUILD [LINES]"""
import os
import re
import sys


def outputs(log_text):
    """{test name: output lines} from a LastTest.log."""
    out = {}
    name, in_output = None, False
    for line in log_text.splitlines():
        m = re.match(r"^\d+/\d+ Test: (.+)$", line)
        if m:
            name, in_output = m.group(1), False
            out[name] = []
        elif name is not None and line == "Output:":
            in_output = True
        elif in_output and line == "<end of output>":
            in_output = False
        elif in_output and not line.startswith("-----"):
            out[name].append(line)
    return out


def failed_names(text):
    """The names in a LastTestsFailed.log ("N:name" per line)."""
    return [line.split(":", 1)[1] for line in text.splitlines() if ":" in line]


def main():
    build = sys.argv[1]
    keep = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    texts = {}
    for f in ("LastTest.log", "LastTestsFailed.log"):
        path = os.path.join(build, "Testing", "Temporary", f)
        try:
            with open(path, errors="replace") as fh:
                texts[f] = fh.read()
        except OSError as e:
            print("failed_output: cannot read %s: %s" % (path, e))
            return
    out = outputs(texts["LastTest.log"])
    for name in failed_names(texts["LastTestsFailed.log"]):
        lines = out.get(name, [])
        shown = lines[-keep:]
        print("==== failed: %s (last %d of %d lines) ====" % (name, len(shown), len(lines)))
        print("\n".join(shown) if shown else "(no output recorded: ctest may not have run it)")
    print("==== end of failed tests' output ====")


if __name__ == "__main__":
    main()
