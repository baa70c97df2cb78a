"""A throwaway PostgreSQL server for the tests: initdb into a temp dir, pg_ctl start on a free
loopback port, password auth (scram-sha-256), stopped and deleted at the end of the session.

The server binaries come from Debian's ``postgresql`` package (``.ci/run`` installs it when
absent): ``$KSPEC_PG_BINDIR``, else ``pg_config --bindir``, else the newest
``/usr/lib/postgresql/*/bin``, else ``initdb`` on PATH. initdb refuses to run as root, so as
root the server runs as the ``postgres`` system user (created by the package) via ``runuser``.
Each test gets a schema of its own in the one database (``search_path`` set in the URL), so
tests stay independent at the cost of a ``CREATE SCHEMA``, not of a server or a database.
A session killed before its teardown leaves its server running: the next session stops and
removes servers whose owning process (recorded in ``owner``) is gone.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

USER = "kspec"
DATABASE = "kspec"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def bindir() -> Path:
    explicit = os.environ.get("KSPEC_PG_BINDIR")
    candidates = [explicit] if explicit else []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                             check=False).stdout.strip()
        candidates.append(out)
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                         key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit()
                         else 0, reverse=True)
    which = shutil.which("initdb")
    if which:
        candidates.append(str(Path(which).parent))
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").is_file() and (
                Path(candidate) / "pg_ctl").is_file():
            return Path(candidate)
    raise PostgresUnavailable("PostgreSQL server binaries (initdb, pg_ctl) not found: install "
                              "Debian's postgresql package (.ci/run does) or set "
                              "KSPEC_PG_BINDIR")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_orphans(bin_dir: Path) -> None:
    """Stop and remove throwaway servers whose test session died without its teardown."""
    for root in glob.glob(os.path.join(tempfile.gettempdir(), "kspec-pg-*")):
        owner = Path(root) / "owner"
        try:
            pid = int(owner.read_text())
        except (OSError, ValueError):
            continue
        if _alive(pid):
            continue
        as_user = ("runuser", "-u", "postgres", "--") if os.geteuid() == 0 else ()
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", f"{root}/data", "-m",
                        "immediate", "-w", "stop"], capture_output=True, check=False,
                       timeout=60)
        shutil.rmtree(root, ignore_errors=True)


class PostgresServer:
    """One server; :meth:`url` hands out a fresh schema per call."""

    def __init__(self) -> None:
        self.bin = bindir()
        reap_orphans(self.bin)
        self.root = Path(tempfile.mkdtemp(prefix="kspec-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.password = secrets.token_urlsafe(16)
        self._schemas = 0
        self._as: Sequence[str] = ()
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable("running as root and there is no 'postgres' user to "
                                          "run the server as (install Debian's postgresql "
                                          "package)") from None
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._as = ("runuser", "-u", "postgres", "--")
        self.root.chmod(0o700)
        (self.root / "owner").write_text(str(os.getpid()))

    def _run(self, *args: str) -> None:
        result = subprocess.run([*self._as, *args], capture_output=True, text=True, check=False,
                                timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({result.returncode}):\n"
                               f"{result.stdout}\n{result.stderr}")

    def start(self) -> PostgresServer:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._as:
            owner = pwd.getpwnam("postgres")
            os.chown(pwfile, owner.pw_uid, owner.pw_gid)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", USER,
                  f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8",
                  "--locale=C", "--no-sync")
        pwfile.unlink()
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
                   "-c fsync=off -c full_page_writes=off -c max_connections=60 "
                   "-c shared_buffers=32MB")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                  str(self.root / "server.log"), "-o", options, "-w", "-t", "60", "start")
        self.admin("CREATE DATABASE " + DATABASE)
        return self

    @property
    def base_url(self) -> str:
        """The database's URL without a password (pass it separately)."""
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def admin(self, sql: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(f"postgresql://{USER}@127.0.0.1:{self.port}/{database}",
                             password=self.password, autocommit=True) as conn:
            conn.execute(sql.encode())

    def url(self, prefix: str = "t") -> str:
        """A URL whose ``search_path`` is a fresh, empty schema."""
        self._schemas += 1
        schema = f"{prefix}_{os.getpid()}_{self._schemas}"
        self.admin(f"CREATE SCHEMA {schema}", DATABASE)
        return f"{self.base_url}?options={quote(f'-csearch_path={schema}')}"

    def stop(self) -> None:
        if self.data.exists():
            subprocess.run([*self._as, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m",
                            "immediate", "-w", "stop"], capture_output=True, check=False,
                           timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)
