"""A real, throw-away PostgreSQL server with pgvector, for the tests and the benchmarks.

The binaries come from the PyPI package ``pgserver`` (PostgreSQL 16 with pgvector, a manylinux
wheel), so nothing has to be installed by hand: ``pip install -e .[dev]`` is enough. Only the
binaries are used; this module runs them itself because the tests need what ``pgserver``'s own
launcher does not give: TCP on 127.0.0.1 and a free port, password authentication (to test a
wrong password), a data folder of our own that is deleted afterwards, and the server's death with
the process that started it.

PostgreSQL refuses to run as root. When the caller is root (CI, containers), ``initdb`` and
``postgres`` run as the unprivileged system user ``nobody``, which owns the data folder; the
folder lives in a fresh ``/tmp/rag-pg-*`` directory, outside any private temp folder.

    with LocalPostgres() as pg:
        dsn = pg.create_database("t1")     # postgresql://rag:...@127.0.0.1:PORT/t1
"""

from __future__ import annotations

import atexit
import ctypes
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

USER = "rag"
PASSWORD = "rag-test-pw"
UNPRIVILEGED = "nobody"

# Durability off: a test server holds nothing worth an fsync, and it starts and loads faster.
TEST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
                 "max_connections": "200", "shared_buffers": "128MB"}


def pg_install() -> Path:
    """The PostgreSQL installation inside the ``pgserver`` package (bin/, lib/, share/)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the Python package 'pgserver' is not installed (pip install -e '.[dev]')")
    root = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    if not (root / "bin" / "postgres").exists():
        raise RuntimeError(f"{root}: no PostgreSQL binaries in the pgserver package")
    return root


def install_without_pgvector(root: Path) -> Path:
    """A copy of the installation that lacks pgvector (for the "not installed" error), under
    ``root`` (a folder the unprivileged user can reach, such as a fresh ``tempfile.mkdtemp()``).

    PostgreSQL finds its lib/ and share/ folders relative to the real path of its binary, and the
    binaries find their libraries at ``../../../pgserver.libs``: so bin/ is copied, lib/ and the
    libraries linked, and share/ rebuilt from links with an extension folder holding everything
    but ``vector*``."""
    src = pg_install()
    dest = root / "pgserver" / "pginstall"
    shutil.copytree(src / "bin", dest / "bin", symlinks=True)
    (dest / "lib").symlink_to(src / "lib")
    libs = src.parent.parent / "pgserver.libs"
    if libs.exists():
        (root / "pgserver.libs").symlink_to(libs)
    share = dest / "share" / "postgresql"
    share.mkdir(parents=True)
    for entry in (src / "share" / "postgresql").iterdir():
        if entry.name != "extension":
            (share / entry.name).symlink_to(entry)
    ext = share / "extension"
    ext.mkdir()
    for entry in (src / "share" / "postgresql" / "extension").iterdir():
        if not entry.name.startswith("vector"):
            (ext / entry.name).symlink_to(entry)
    _open_up(root)
    return dest


_copies: dict[Path, Path] = {}


def _reachable(path: Path) -> bool:
    """Whether any user may traverse every folder down to ``path``."""
    return all(p.stat().st_mode & 0o001 for p in [path, *path.parents] if p.is_dir())


def reachable_install(install: Path) -> Path:
    """``install``, or, when the unprivileged user cannot reach it (a checkout under /root), a
    copy in a fresh temp folder (binaries, libraries and the vendored ``pgserver.libs``), made once
    per process and removed at exit. Nothing outside our own folders changes its permissions."""
    if _reachable(install):
        return install
    if install not in _copies:
        root = Path(tempfile.mkdtemp(prefix="rag-pg-bin-"))
        root.chmod(0o755)
        dest = root / "pgserver" / "pginstall"
        shutil.copytree(install, dest, symlinks=True)
        libs = install.parent.parent / "pgserver.libs"
        if libs.is_dir():
            shutil.copytree(libs, root / "pgserver.libs", symlinks=True)
        _open_up(root)
        atexit.register(shutil.rmtree, root, True)
        _copies[install] = dest
    return _copies[install]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _open_up(root: Path) -> None:
    """Lets any user read and traverse a folder tree we made."""
    for p in [root, *root.rglob("*")]:
        if not p.is_symlink():
            p.chmod(p.stat().st_mode | 0o005)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """The server gets SIGINT (fast shutdown) if the process that started it dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _sweep_stale(max_age_s: float = 3600) -> None:
    """Removes data folders left by servers whose process died without cleaning up (a killed
    test run): older than an hour, and no live postmaster."""
    for d in Path(tempfile.gettempdir()).glob("rag-pg-*"):
        try:
            if d.name.startswith("rag-pg-bin-") or time.time() - d.stat().st_mtime < max_age_s:
                continue
            pid_file = d / "data" / "postmaster.pid"
            if pid_file.exists():
                os.kill(int(pid_file.read_text().split()[0]), 0)
                continue  # alive
        except ProcessLookupError:
            pass
        except (OSError, ValueError, IndexError):
            continue
        shutil.rmtree(d, ignore_errors=True)


class LocalPostgres:
    """One PostgreSQL server on 127.0.0.1 and a free port, its data in a temp folder.

    Args:
        settings: extra ``postgres -c`` settings (default: :data:`TEST_SETTINGS`).
        install: a PostgreSQL installation (default: the one in ``pgserver``).
        replica_of: start as a streaming standby of this (running) server.
    """

    def __init__(self, settings: dict[str, str] | None = None, *, install: Path | None = None,
                 replica_of: "LocalPostgres | None" = None) -> None:
        self.install = install or pg_install()
        self.settings = dict(TEST_SETTINGS if settings is None else settings)
        self.replica_of = replica_of
        self.root: Path | None = None
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self._run_as = self._unprivileged() if os.geteuid() == 0 else None

    # ------------------------------------------------------------------ running

    @staticmethod
    def _unprivileged() -> pwd.struct_passwd:
        try:
            return pwd.getpwnam(UNPRIVILEGED)
        except KeyError:
            raise RuntimeError(f"running as root, and there is no '{UNPRIVILEGED}' user to run PostgreSQL as") from None

    def _as_user(self) -> dict:
        if self._run_as is None:
            return {}
        return {"user": self._run_as.pw_uid, "group": self._run_as.pw_gid, "extra_groups": []}

    def _run(self, exe: str, *args: str, timeout: float = 120) -> str:
        out = subprocess.run([str(self.install / "bin" / exe), *args], capture_output=True, text=True,
                             cwd=self.root, timeout=timeout, **self._as_user())
        if out.returncode != 0:
            raise RuntimeError(f"{exe} failed ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
        return out.stdout

    @property
    def data(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    def start(self) -> "LocalPostgres":
        _sweep_stale()
        self.root = Path(tempfile.mkdtemp(prefix="rag-pg-"))
        if self._run_as is not None:
            self.install = reachable_install(self.install)
            os.chown(self.root, self._run_as.pw_uid, self._run_as.pw_gid)
        if self.replica_of is None:
            pwfile = self.root / "pw"
            pwfile.write_text(PASSWORD + "\n")
            if self._run_as is not None:
                os.chown(pwfile, self._run_as.pw_uid, self._run_as.pw_gid)
            self._run("initdb", "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}", "--auth-local=trust",
                      "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
            pwfile.unlink()
            with open(self.data / "pg_hba.conf", "a", encoding="utf-8") as f:
                f.write(f"host replication {USER} 127.0.0.1/32 scram-sha-256\n")
        else:
            primary = self.replica_of
            env_pw = {"PGPASSWORD": PASSWORD}
            out = subprocess.run([str(self.install / "bin" / "pg_basebackup"), "-D", str(self.data), "-R",
                                  "-h", "127.0.0.1", "-p", str(primary.port), "-U", USER, "-X", "stream", "--checkpoint=fast",
                                  "--no-sync"], capture_output=True, text=True, cwd=self.root, timeout=300,
                                 env={**os.environ, **env_pw}, **self._as_user())
            if out.returncode != 0:
                raise RuntimeError(f"pg_basebackup failed: {out.stderr.strip()}")
        for attempt in range(5):
            self.port = free_port()
            if self._launch():
                return self
        raise RuntimeError(f"PostgreSQL did not start: {self.log_tail()}")

    def _launch(self) -> bool:
        args = [str(self.install / "bin" / "postgres"), "-D", str(self.data), "-p", str(self.port),
                "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}"]
        for k, v in self.settings.items():
            args += ["-c", f"{k}={v}"]
        log = open(self.root / "server.log", "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=self.root,
                                     preexec_fn=_die_with_parent, start_new_session=True, **self._as_user())
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False  # e.g. the port was taken in between: try another
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                if self._ready():
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"PostgreSQL did not accept connections within 60 s: {self.log_tail()}")

    def _ready(self) -> bool:
        out = subprocess.run([str(self.install / "bin" / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                             capture_output=True, timeout=10)
        return out.returncode == 0

    def log_tail(self, n: int = 2000) -> str:
        try:
            return (self.root / "server.log").read_text(errors="replace")[-n:] if self.root else ""
        except OSError:
            return ""

    def stop(self) -> None:
        """Fast shutdown, then the data folder goes."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> "LocalPostgres":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ databases

    def dsn(self, database: str = "postgres", *, user: str = USER, password: str | None = PASSWORD) -> str:
        auth = f"{user}:{password}" if password is not None else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> None:
        """Runs one statement as the superuser (outside a transaction, so CREATE DATABASE works)."""
        import psycopg

        with psycopg.connect(self.dsn(database), autocommit=True) as conn:
            conn.execute(statement)

    def create_database(self, name: str) -> str:
        """A new empty database; its DSN."""
        self.sql(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":  # pragma: no cover - a server to try things by hand
    with LocalPostgres() as pg:
        print(pg.create_database("rag"), flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
