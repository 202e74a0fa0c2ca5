"""Mutation testing of the modules that guard tenants, money and bytes (`make mutate`).

Each module is mutated on its own by mutmut 3, judged only by the tests that exercise it (a
few seconds per mutant instead of the whole suite), with at most `--max-children` workers: the
machine is shared. Results per module go to docs/mutation.json; docs/mutation.md is rendered
from it, with every surviving mutant and the reason it is left (tools/mutation_survivors.py).

    python tools/mutate.py                      # every module, then the report
    python tools/mutate.py --module keys        # one module (its section of the report)
    python tools/mutate.py --day-of-year        # CI: one module, chosen by today's date
    python tools/mutate.py --report-only        # docs/mutation.md again from docs/mutation.json
"""
from __future__ import annotations

import argparse
import datetime
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "mutation.json"
REPORT = ROOT / "docs" / "mutation.md"
THRESHOLD = 85.0


@dataclass(frozen=True)
class Module:
    path: str                                 # the file mutmut mutates
    tests: tuple[str, ...]                    # the tests that judge it
    functions: tuple[str, ...] = ()           # only these functions count (empty: all of the file)
    guards: str = ""                          # one line for the report

    @property
    def dotted(self) -> str:
        return self.path.removesuffix(".py").replace("/", ".")


MODULES: dict[str, Module] = {
    "quotas": Module(
        "quotas/services.py", ("tests/quotas/test_quota_service.py",),
        guards="the quota service: reserve, charge, release, recalculate"),
    "signing": Module(
        "storage_app/signing.py", ("tests/storage_app/test_signing.py",),
        guards="app URL signing and verification"),
    "keys": Module(
        "storage_app/keys.py", ("tests/storage_app/test_keys.py",),
        guards="storage key building and validation"),
    "authentication": Module(
        "accounts/authentication.py", ("tests/accounts/test_api_keys.py",),
        guards="API key authentication (headers, lookup, revocation, last use)"),
    "api_key_lookup": Module(
        "accounts/services.py", ("tests/accounts/test_api_keys.py",),
        functions=("hash_secret", "key_prefix", "api_key_lookup"),
        guards="the API key lookup the authentication builds on"),
    "url_policy": Module(
        "config/url_policy.py", ("tests/config/test_url_policy.py", "tests/config/test_http_client.py"),
        guards="the remote-fetch address and URL policy"),
    "selectors": Module(
        "media_app/selectors.py", ("tests/media_app/test_selectors.py",),
        guards="media visibility and access selectors"),
    "grants": Module(
        "media_app/grants.py", ("tests/media_app/test_grants.py",),
        guards="the upload-grant rules of app-signed /files/ URLs"),
}


# Scores of the suite before this tool existed (same mutants, the then existing tests).
BASELINE: dict[str, str] = {
    "quotas": "80.5% (test_quota_service)",
    "signing": "76.0% (test_upload_grants)",
    "keys": "43.5% (test_keys)",
    "authentication": "53.8% (test_api_keys)",
    "api_key_lookup": "18.9% (test_api_keys)",
    "url_policy": "not measured",
    "selectors": "47.4% (test_media_read)",
    "grants": "92.2% (test_upload_grants)",
}


# ------------------------------------------------------------------ one module, in mutants/

def _patterns(module: Module) -> list[str]:
    """mutmut's names for the mutants of `module.functions` (`x_<name>__mutmut_<n>`)."""
    return [f"{module.dotted}.x_{f}__mutmut_*" for f in module.functions]


def _worker(name: str, max_children: int) -> None:
    """Runs inside a fresh process: mutmut's configuration is read once per process."""
    from mutmut import configuration
    from mutmut.__main__ import cli

    module = MODULES[name]
    cfg = configuration.config()
    cfg.only_mutate = [module.path]
    cfg.pytest_add_cli_args_test_selection = list(module.tests)
    (ROOT / "mutants").mkdir(exist_ok=True)
    shutil.copy(ROOT / "tools" / "mutmut_conftest.py", ROOT / "mutants" / "conftest.py")
    try:
        cli.main(["run", "--max-children", str(max_children), *_patterns(module)], standalone_mode=False)
    except SystemExit as exc:  # mutmut exits on a failing clean run; say so to the caller
        if exc.code:
            raise
    (ROOT / "mutants" / "mutate-result.json").write_text(json.dumps(_collect(module)))


def _changed_lines(mutant: str, path: str) -> str:
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    diff = get_diff_for_mutant(mutant, path=path)
    changed = [line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    return " / ".join(changed)[:160]


def _collect(module: Module) -> dict:
    from mutmut.stats import status_by_exit_code

    meta = json.loads((ROOT / "mutants" / f"{module.path}.meta").read_text())
    wanted = _patterns(module)
    statuses = {mutant: status_by_exit_code[code] for mutant, code in meta["exit_code_by_key"].items()
                if not wanted or any(fnmatch.fnmatch(mutant, w) for w in wanted)}
    killed = sum(1 for s in statuses.values() if s in KILLED)
    survivors = {m: _changed_lines(m, module.path) for m in sorted(statuses, key=_order) if statuses[m] not in KILLED}
    return {"mutants": len(statuses), "killed": killed, "survived": len(statuses) - killed,
            "score": round(100.0 * killed / len(statuses), 1) if statuses else 100.0,
            "survivors": survivors, "not_killed_as": sorted({statuses[m] for m in survivors})}


KILLED = ("killed", "timeout", "caught by type check")


def _order(mutant: str) -> tuple[str, int]:
    base, _, number = mutant.rpartition("__mutmut_")
    return base, int(number)


def _environment() -> dict[str, str]:
    """SQLite, the local backend and no CI flag: the mutation run needs no service, and tests
    that need PostgreSQL or Redis skip instead of failing (they cannot kill a mutant here)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CI", "DATABASE_URL", "DATABASE_REPLICA_URL", "REDIS_URL", "MEDIASTORE_TEST_BACKEND")}
    return {**env, "PYTHONUNBUFFERED": "1"}


def run_module(name: str, max_children: int) -> dict:
    shutil.rmtree(ROOT / "mutants", ignore_errors=True)   # a fresh copy: no stale verdicts
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, __file__, "_worker", name, str(max_children)], cwd=ROOT,
                            env=_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:  # text mode splits mutmut's carriage-return spinner into lines: drop them
        if line.strip() and not "\u2800" <= line.lstrip()[0] <= "\u28ff":
            print("   ", line.rstrip(), flush=True)
    if proc.wait() != 0:
        raise SystemExit(f"mutmut failed on {name} (exit {proc.returncode})")
    result = json.loads((ROOT / "mutants" / "mutate-result.json").read_text())
    result["seconds"] = round(time.monotonic() - started)
    result["max_children"] = max_children
    result["date"] = datetime.date.today().isoformat()
    return result


# ------------------------------------------------------------------ the report

def render(results: dict) -> str:
    from tools.mutation_survivors import WHY

    lines = [
        "# Mutation testing",
        "",
        "`make mutate` (tools/mutate.py, mutmut 3) mutates each module that guards tenants, money or",
        "bytes on its own and runs only the tests listed for it, on SQLite and the local backend. A",
        "mutant is *killed* when one of those tests fails (or times out). Every module must kill at",
        f"least {THRESHOLD:.0f}%; CI (`.ci/run`) runs one module a day, chosen by the day of the year",
        "(`--day-of-year`). Regenerate with `make mutate` (all modules, `MUTATE_CHILDREN=1` by default)",
        "or `make mutate MUTATE_ARGS='--module keys'`; `mutmut show NAME` (after a run of its module)",
        "prints a mutant's diff.",
        "",
        "Why mutmut rather than cosmic-ray: mutmut 3 puts every mutant of a function behind one",
        "trampoline in a single copy of the project (`mutants/`), records which tests reach which",
        "function, and forks each mutant's pytest run from a process that has Django and the test",
        "modules loaded, so a mutant costs its few relevant tests. cosmic-ray rewrites the file on disk",
        "per mutant and starts a new test process each time (Django setup and migrations included) and",
        "needs its own session database and worker configuration: several times slower on this suite.",
        "`tools/mutmut_conftest.py` (copied to `mutants/conftest.py`) makes the test database once per",
        "run; forks inherit it.",
        "",
        "| module | file | tests | mutants | killed | survived | score | before | run time |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, module in MODULES.items():
        r = results.get(name)
        scope = module.path + (f" ({', '.join(module.functions)})" if module.functions else "")
        tests = ", ".join(Path(t).name for t in module.tests)
        before = BASELINE.get(name, "")
        if r is None:
            lines.append(f"| {name} | {scope} | {tests} | not run | | | | {before} | |")
            continue
        lines.append(f"| {name} | {scope} | {tests} | {r['mutants']} | {r['killed']} | {r['survived']} "
                     f"| {r['score']}% | {before} | {r['seconds']} s (max-children {r['max_children']}, {r['date']}) |")
    lines += ["", "*before*: the score of the tests as they were when mutation testing was introduced",
              "(2026-12-02), judged by the test files that existed then for the module."]
    lines += ["", "## Tests that could not fail", "",
              "Fixed with this tool (each now expects one status and code; a backend-dependent one names its",
              "backend and is parametrized): `test_content_redirects_to_a_signed_url_unless_proxied` (local 200,",
              "S3 302, S3 proxied 200), `test_traversal_in_object_names_is_refused` (400 `invalid_path` and the",
              "rule's message per name), `test_each_task_runs_its_job_and_records_the_run` (a clock that moves",
              "only while the job runs: start and finish differ by the job's five minutes),",
              "`test_another_member_or_organization_gets_404_everywhere` (`media_not_found` only), the upload",
              "PUT helpers of test_upload_grants and test_media_upload (204 from the app, 200 from S3), the two",
              "content reads of test_lifecycle (200 locally, 302 on S3, by MEDIASTORE_TEST_BACKEND).",
              "",
              "Still accepting several answers, in files other work owns (`grep -rn 'in (200' tests`):",
              "test_dedup_scope.py (`in (200, 201)`), test_streaming_upload.py, test_backends.py,",
              "test_encryption.py, test_imaging.py. test_lifecycle's `stored` helper takes 200 or 201 on purpose",
              "(a deduplicated upload answers 200 with the existing file).",
              "", "## Surviving mutants", "",
              "Each is named as `mutmut show NAME` shows it, with the mutated line and why no test kills it.", ""]
    for name, module in MODULES.items():
        survivors = (results.get(name) or {}).get("survivors") or {}
        lines.append(f"### {name}: {module.guards}")
        lines.append("")
        if not survivors:
            lines += ["None.", ""]
            continue
        for mutant, diff in survivors.items():
            why = WHY.get(mutant, "NOT EXPLAINED: add a test or a reason in tools/mutation_survivors.py")
            lines.append(f"- `{mutant}`: `{diff}`: {why}")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv[:1] == ["_worker"]:
        _worker(argv[1], int(argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--module", action="append", choices=sorted(MODULES), help="repeatable; default: all")
    parser.add_argument("--day-of-year", action="store_true", help="one module, chosen by today's date (CI)")
    parser.add_argument("--max-children", type=int, default=1, help="parallel mutant runs (the machine is shared)")
    parser.add_argument("--threshold", type=float, default=THRESHOLD, help="minimum %% killed per module")
    parser.add_argument("--no-report", action="store_true", help="do not touch docs/mutation.{json,md}")
    parser.add_argument("--report-only", action="store_true", help="render docs/mutation.md from docs/mutation.json")
    parser.add_argument("--budget-seconds", type=int, default=0,
                        help="warn when a module takes longer (CI: 300); the run is bounded by --max-children")
    args = parser.parse_args(argv)

    if args.report_only:
        REPORT.write_text(render(json.loads(RESULTS.read_text())) + "\n")
        return 0
    names = args.module or list(MODULES)
    if args.day_of_year:
        names = [list(MODULES)[datetime.date.today().timetuple().tm_yday % len(MODULES)]]
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    failed = []
    for name in names:
        print(f"== mutate {name}: {MODULES[name].path} judged by {' '.join(MODULES[name].tests)}", flush=True)
        result = run_module(name, args.max_children)
        results[name] = result
        print(f"== {name}: {result['killed']}/{result['mutants']} killed ({result['score']}%), "
              f"{result['survived']} survived, {result['seconds']} s", flush=True)
        if result["score"] < args.threshold:
            failed.append(name)
        if args.budget_seconds and result["seconds"] > args.budget_seconds:
            print(f"warning: {name} took {result['seconds']} s, over the {args.budget_seconds} s budget: "
                  "move slow tests out of its list or split it", flush=True)
        if not args.no_report:  # after each module: a long run stopped halfway keeps what it measured
            RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
            REPORT.write_text(render(results) + "\n")
    if failed:
        print(f"below {args.threshold:.0f}% killed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    sys.exit(main(sys.argv[1:]))
