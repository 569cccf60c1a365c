"""A throw-away PostgreSQL server for the tests: the session fixture ``postgres_url``.

Enable it for the whole suite from tests/conftest.py with::

    from tests.postgres import postgres_url  # noqa: F401  (a pytest fixture)

What it does, once per test session:

1. finds ``pg_ctl``, ``initdb`` and ``postgres`` -- on PATH, else in the newest
   ``/usr/lib/postgresql/<version>/bin`` (where Debian's ``apt-get install postgresql`` puts them;
   Debian does not put them on PATH);
2. ``initdb``s a cluster in a fresh ``/tmp/cdp-pg-*`` directory (UTF8, C locale, no fsync);
3. starts it on ``127.0.0.1:<free port>`` with its unix socket in that directory (nothing else on the
   machine is touched: no system cluster, no /var/run/postgresql);
4. yields ``postgresql+psycopg://postgres:<random password>@127.0.0.1:<port>/postgres``
   (TCP logins need the password -- scram-sha-256 -- so tests can exercise authentication failures);
5. stops it (``pg_ctl stop -m immediate``) and deletes the directory at the end of the session.

Running as root (CI containers, this dev box): initdb and postgres refuse to run as root, so the
directory is chowned to the ``postgres`` system user (created by the Debian package) and
initdb/pg_ctl run as that user -- ``subprocess.run(..., user=, group=, extra_groups=[])``, the same
as ``runuser -u postgres -- pg_ctl ...``. The directory is made with ``tempfile.mkdtemp`` under /tmp
rather than pytest's tmp_path because /tmp/pytest-of-root is 0700 and the postgres user could not
reach into it.

When the server binaries (or the ``postgres`` user when root, or psycopg) are missing, the tests
that use the fixture are skipped with a hint -- unless the ``CI`` environment variable is set
(CI=true), in which case they fail: CI installs PostgreSQL and must really run them.
"""

from __future__ import annotations

import atexit
import glob
import importlib.util
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SERVER_BINARIES = ("pg_ctl", "initdb", "postgres")
MISSING_HINT = "PostgreSQL server binaries not found: apt-get install postgresql (CI installs it)"


def find_postgres_bin_dir() -> Path | None:
    """The directory holding pg_ctl, initdb and postgres: PATH first, then /usr/lib/postgresql/*/bin."""
    candidates: list[Path] = []
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", Path(path).parent.name)) or (0,)

    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)]
    for directory in candidates:
        if all(os.access(directory / exe, os.X_OK) for exe in SERVER_BINARIES):
            return directory
    return None


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(reason: str) -> None:
    if in_ci():
        pytest.fail(f"{reason} [CI is set, so this is a failure, not a skip]", pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """One initdb'd cluster in a temp directory; start() and stop() (idempotent)."""

    def __init__(self, bin_dir: Path, run_as: pwd.struct_passwd | None) -> None:
        self.bin_dir = bin_dir
        self.run_as = run_as
        self.password = secrets.token_urlsafe(16)
        self.root = Path(tempfile.mkdtemp(prefix="cdp-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        self.running = False

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres:{self.password}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float) -> subprocess.CompletedProcess:
        kwargs: dict[str, Any] = {}
        if self.run_as is not None:  # root: drop to the postgres user in the child only
            kwargs = {"user": self.run_as.pw_uid, "group": self.run_as.pw_gid, "extra_groups": []}
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        env.pop("PGDATA", None)
        return subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]], cwd=self.root, env=env, capture_output=True, text=True,
            timeout=timeout, **kwargs,
        )

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-15:])
        except OSError:
            return ""

    def start(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if self.run_as is not None:
            for path in (self.root, pwfile):
                os.chown(path, self.run_as.pw_uid, self.run_as.pw_gid)
        init = self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--pwfile", str(pwfile), "--auth-local=trust",
            "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync", timeout=180,
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed ({init.returncode}): {init.stderr.strip() or init.stdout.strip()}")
        last_error = ""
        for _attempt in range(3):  # a free port can be taken between probing and binding
            self.port = _free_port()
            options = (
                f"-h 127.0.0.1 -p {self.port} -k {self.root} -F "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50"
            )
            started = self._run(
                "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start",
                timeout=90,
            )
            if started.returncode == 0:
                self.running = True
                return
            last_error = f"{started.stderr.strip()}\n{self._log_tail()}"
            if "could not bind" not in last_error and "already in use" not in last_error:
                break
        raise RuntimeError(f"PostgreSQL did not start from {self.bin_dir}:\n{last_error}")

    def stop(self) -> None:
        if self.running:
            self.running = False
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
            except (OSError, subprocess.SubprocessError):
                pass
        shutil.rmtree(self.root, ignore_errors=True)


_SERVER: PostgresServer | None = None


def _shared_server() -> PostgresServer:
    """One server per process even if the fixture is imported into several modules."""
    global _SERVER
    if _SERVER is not None and _SERVER.running:
        return _SERVER
    bin_dir = find_postgres_bin_dir()
    if bin_dir is None:
        _unavailable(MISSING_HINT)
    if importlib.util.find_spec("psycopg") is None:
        _unavailable("psycopg (v3) is not installed: pip install 'psycopg[binary]'")
    run_as = None
    if os.geteuid() == 0:
        try:
            run_as = pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("tests run as root but there is no 'postgres' system user to run the server as "
                         "(apt-get install postgresql creates it)")
    server = PostgresServer(bin_dir, run_as)
    atexit.register(server.stop)  # also when the session dies before fixture teardown
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    _SERVER = server
    return server


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a throw-away PostgreSQL server (database `postgres`, superuser `postgres`)."""
    server = _shared_server()
    yield server.url
    server.stop()


def create_database(server_url: str, name: str | None = None) -> str:
    """Create an empty database on the server of ``server_url``; returns its URL (same credentials)."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    name = name or f"t_{uuid.uuid4().hex[:12]}"
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ValueError(f"database name {name!r}: use lower-case letters, digits and underscores")
    engine = sa.create_engine(server_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))  # name checked above; DDL takes no bind params
    finally:
        engine.dispose()
    return sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
