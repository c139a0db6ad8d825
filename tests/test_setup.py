"""The README's two commands do all the set-up: `make chat` and `make test` check the system
packages first (scripts/sysdeps.sh), install what is missing as root, and otherwise say in one
line what to run, before anything slow starts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "sysdeps.sh"
TOOLS = ("sh", "id", "grep", "dpkg-query", "apt-get", "cmake", "g++", "c++", "chromium")


def toolbox(tmp_path: Path, without: tuple[str, ...] = ()) -> str:
    """A PATH holding only the named tools that exist here, minus ``without``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in TOOLS:
        found = shutil.which(tool)
        if found and tool not in without:
            (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def run(path: str, *needs: str, user: int | None = None):
    """The script on ``path``, never installing anything (DRY_RUN), with this Python as python3."""
    cmd = ["sh", str(SCRIPT), *needs]
    if user is not None and os.geteuid() == 0:  # run as an ordinary user
        cmd = [shutil.which("setpriv") or "setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    env = {"PATH": path, "DRY_RUN": "1", "PYTHON": sys.executable}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_nothing_missing_says_nothing(tmp_path):
    got = run(toolbox(tmp_path), "build", "browser")
    assert (got.returncode, got.stdout, got.stderr) == (0, "", "")


def test_missing_chromium_is_installed_as_root(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("this test runs as root, as `make test` on a fresh machine does")
    got = run(toolbox(tmp_path, without=("chromium",)), "build", "browser")
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == ("DEBIAN_FRONTEND=noninteractive apt-get update -q && "
                                  "apt-get install -y -q --no-install-recommends chromium")


def test_missing_packages_without_root_print_one_command():
    with tempfile.TemporaryDirectory() as d:  # outside pytest's private tmp: nobody may enter it
        os.chmod(d, 0o755)
        got = run(toolbox(Path(d), without=("chromium",)), "browser", user=65534)
    assert got.returncode == 1
    lines = got.stderr.strip().splitlines()
    assert lines[0] == "Missing system packages (chromium). Install them, then run make again:"
    assert lines[1] == "  sudo apt-get update && sudo apt-get install -y -q --no-install-recommends chromium"


def test_build_tools_are_checked(tmp_path):
    got = run(toolbox(tmp_path, without=("cmake", "g++", "c++")), "build")
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip().endswith("apt-get install -y -q --no-install-recommends cmake g++")


def test_the_chat_does_not_need_the_browser(tmp_path):
    got = run(toolbox(tmp_path, without=("chromium",)), "build")
    assert got.returncode == 0 and got.stderr == ""


def make_plan(*goals: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}  # under make test
    out = subprocess.run(["make", "-n", "--no-print-directory", *goals, "VENV=/nonexistent/venv"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


@pytest.mark.parametrize("goal, needs", [("test", "build browser"), ("chat", "build")])
def test_make_checks_the_system_before_anything_slow(goal, needs):
    plan = make_plan(goal)
    assert plan[0].split() == ["sh", "scripts/sysdeps.sh", *needs.split()]
    assert plan[1] == "python3 -m venv /nonexistent/venv"


def test_ci_runs_the_readme_command():
    lines = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines() if ln and not ln.startswith("#")]
    assert lines[-1] == "make test"
