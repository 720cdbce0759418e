"""Merge the stages of benchmarks/gpu/run.sh into one JSON: status, time and log tail of each
stage, the test counts from JUnit XML, and the rows of the engine and registration stages.

    python benchmarks/gpu/merge.py WORKDIR OUT.json CARD
"""
from __future__ import annotations

import json
import os
import sys
import xml.etree.ElementTree as ET


def _tail(path: str, lines: int = 40) -> str:
    try:
        with open(path, errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])
    except OSError:
        return ""


def main(work: str, out: str, card: str) -> None:
    stages = {}
    try:
        with open(os.path.join(work, "stages.txt")) as fh:
            for line in fh:
                name, rc, secs = line.split()
                rc = int(rc)
                status = "ok" if rc == 0 else ("timeout" if rc in (124, 137) else "failed")
                stages[name] = {"exit": rc, "status": status, "seconds": float(secs),
                                "log_tail": _tail(os.path.join(work, f"{name}.log"))}
    except OSError:
        pass
    tests = None
    try:
        root = ET.parse(os.path.join(work, "tests.xml")).getroot()
        suite = root if root.tag == "testsuite" else root.find("testsuite")
        tests = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
        tests["failed"] = [f"{c.get('classname')}::{c.get('name')}" for c in suite.iter("testcase")
                           if c.find("failure") is not None or c.find("error") is not None]
    except (OSError, ET.ParseError, AttributeError):
        pass
    result = {"card": card, "stages": stages, "tests": tests}
    for name in ("engine", "register"):
        try:
            with open(os.path.join(work, f"{name}.json")) as fh:
                result[name] = json.load(fh)
        except (OSError, ValueError) as exc:
            result[name] = {"error": f"no rows: {exc}"}
    tmp = out + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(result, fh, indent=1)
    os.replace(tmp, out)


if __name__ == "__main__":
    main(*sys.argv[1:4])
