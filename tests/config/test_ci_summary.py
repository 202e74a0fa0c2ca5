"""`.ci/run` ends with one line adding up every pytest run's JUnit report."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "junit_summary.py"

REPORT = """<?xml version="1.0" encoding="utf-8"?><testsuites>
<testsuite name="pytest" errors="{errors}" failures="{failures}" skipped="{skipped}" tests="{tests}"></testsuite>
</testsuites>"""


def _summary(tmp_path: Path, *reports: dict) -> subprocess.CompletedProcess:
    paths = []
    for n, counts in enumerate(reports):
        path = tmp_path / f"run{n}.xml"
        path.write_text(REPORT.format(**{"errors": 0, "failures": 0, "skipped": 0, **counts}))
        paths.append(str(path))
    return subprocess.run([sys.executable, str(SCRIPT), *paths], capture_output=True, text=True)


def test_it_adds_up_every_run(tmp_path):
    done = _summary(tmp_path, {"tests": 10, "skipped": 1}, {"tests": 5, "skipped": 2})
    assert done.stdout == "12 passed, 0 failed, 3 skipped\n"
    assert done.returncode == 0


def test_failures_and_errors_count_as_failed_and_fail_the_run(tmp_path):
    done = _summary(tmp_path, {"tests": 10, "failures": 1, "errors": 2})
    assert done.stdout == "7 passed, 3 failed, 0 skipped\n"
    assert done.returncode == 1


def test_a_run_that_tested_nothing_has_not_passed(tmp_path):
    done = _summary(tmp_path)
    assert done.stdout == "0 passed, 0 failed, 0 skipped\n"
    assert done.returncode == 1
