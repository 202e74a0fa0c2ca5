"""Add up every JUnit XML report of a CI run: one line `N passed, N failed, N skipped`.

pytest writes one report per run (`--junitxml`); this is what `.ci/run` prints last, so a
CI run's outcome reads from its final line. Errors (a fixture failing) count as failed.
Exits non-zero when no report holds a single test: a run that tested nothing has not passed.
"""
from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def totals(paths: list[Path]) -> tuple[int, int, int]:
    tests = failed = skipped = 0
    for path in paths:
        root = ET.parse(path).getroot()
        for suite in root.iter("testsuite"):
            tests += int(suite.get("tests", 0))
            failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            skipped += int(suite.get("skipped", 0))
    return tests - failed - skipped, failed, skipped


def main(argv: list[str]) -> int:
    paths = [Path(arg) for arg in argv if Path(arg).is_file()]
    passed, failed, skipped = totals(paths)
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
