"""Helpers for the fault lane: the `rag` command in a child process, read-only folders and small
disks made for real (a read-only bind mount and a small tmpfs where this machine lets us mount;
otherwise an unprivileged user and the file-size limit), and the check that a run ended in a
clear one-line error or not at all."""

from __future__ import annotations

import contextlib
import functools
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT

NOBODY = 65534


def rag(*args: str, env: dict | None = None, user: int | None = None, fsize: int | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess:
    """``rag ARGS`` in a child process (optionally as another user, or with a file-size limit)."""
    cmd = [sys.executable, "-m", "rag.cli", *args]
    if user is not None:
        cmd = [shutil.which("setpriv") or "setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}

    def limit() -> None:  # Python ignores SIGXFSZ, so writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=limit if fsize is not None else None)


def clean_end(proc: subprocess.CompletedProcess, *codes: int) -> None:
    """The run ended with one of ``codes`` and, if it failed, with one line naming the problem."""
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in codes, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    if proc.returncode == 2:
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("rag: error: ")]
        assert len(errors) == 1, proc.stderr


@functools.lru_cache(maxsize=1)
def can_mount() -> bool:
    """Whether this process may mount file systems (root with CAP_SYS_ADMIN, as on the CI VM).
    ``RAG_TEST_NO_MOUNT=1`` takes the fallbacks even where mounting works (to test them)."""
    if os.geteuid() != 0 or not shutil.which("mount") or os.environ.get("RAG_TEST_NO_MOUNT") == "1":
        return False
    probe = Path(tempfile.mkdtemp(prefix="rag-mount-probe-"))
    try:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)],
                            capture_output=True).returncode == 0
        if ok:
            subprocess.run(["umount", str(probe)], capture_output=True)
        return ok
    finally:
        probe.rmdir()


def _umount(path: Path) -> None:
    for _ in range(50):  # a child that just exited may still hold it for a moment
        if subprocess.run(["umount", str(path)], capture_output=True).returncode == 0:
            return
        subprocess.run(["sleep", "0.1"])
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@dataclass
class View:
    """A folder to run ``rag`` against, and how to run it there (as whom, with what limit)."""

    path: Path
    user: int | None = None
    fsize: int | None = None
    how: str = ""
    env: dict | None = None

    def rag(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return rag(*args, user=self.user, fsize=self.fsize, env=self.env, **kw)


@contextlib.contextmanager
def read_only(index: Path) -> Iterator[View]:
    """``index`` seen read-only: a read-only bind mount where possible; otherwise a copy that an
    unprivileged user may read but not write (root writes whatever the permissions say)."""
    if can_mount():
        target = Path(tempfile.mkdtemp(prefix="rag-ro-"))
        subprocess.run(["mount", "--bind", str(index), str(target)], check=True)
        try:
            subprocess.run(["mount", "-o", "remount,ro,bind", str(target)], check=True)
            yield View(target, how="read-only bind mount")
        finally:
            _umount(target)
            target.rmdir()
        return
    if os.geteuid() != 0:
        for p in [index, *index.rglob("*")]:
            p.chmod(p.stat().st_mode & ~0o222)
        try:
            yield View(index, how="permissions")
        finally:
            for p in [index, *index.rglob("*")]:
                p.chmod(p.stat().st_mode | 0o200)
        return
    outer = Path(tempfile.mkdtemp(prefix="rag-ro-"))
    try:
        outer.chmod(0o755)
        copy = outer / "index"
        shutil.copytree(index, copy)
        from rag.onnx_embed import cache_root

        cache = outer / "cache"  # the exported models, where that user may read them
        if (cache_root() / "onnx").is_dir():
            shutil.copytree(cache_root() / "onnx", cache / "onnx")
        for p in [copy, *copy.rglob("*"), *cache.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        yield View(copy, user=NOBODY, how="unprivileged user", env={"RAG_CACHE": str(cache), "HOME": str(outer)})
    finally:
        shutil.rmtree(outer, ignore_errors=True)


@contextlib.contextmanager
def small_disk(size: int) -> Iterator[View]:
    """An empty folder on a disk that fills after about ``size`` bytes: a tmpfs of that size where
    mounting is allowed, else a file-size limit for the processes run in it."""
    target = Path(tempfile.mkdtemp(prefix="rag-disk-"))
    if can_mount():
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)], check=True)
        try:
            yield View(target, how=f"tmpfs of {size} bytes")
        finally:
            _umount(target)
            target.rmdir()
        return
    try:
        yield View(target, fsize=size, how=f"file-size limit of {size} bytes")
    finally:
        shutil.rmtree(target, ignore_errors=True)
