"""`make bench` must at least start: every benchmark script compiles and bench/run.py parses its
options (the benchmarks themselves are run by hand, never timed in tests)."""

from __future__ import annotations

import py_compile
import subprocess
import sys

from tests.conftest import ROOT


def test_every_bench_script_compiles():
    for path in sorted((ROOT / "bench").glob("*.py")):
        py_compile.compile(str(path), doraise=True)


def test_bench_run_lists_its_sections():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--help"], capture_output=True,
                         text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    for section in ("serve", "embedders", "pg-scale", "feeds"):
        assert section in out.stdout
