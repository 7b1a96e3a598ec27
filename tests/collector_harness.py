"""The real collector for tests: `checkpoint-collector serve` under uvicorn, over TLS on
127.0.0.1 with trustme certificates, on SQLite or on the local PostgreSQL.

    from tests.collector_harness import tls, database_url, collector, Collector  # fixtures

PostgreSQL is the one `provisioning/test-postgres.sh` starts (`make test` runs it); each test
gets its own database, dropped afterwards. Without it, the PostgreSQL variants are skipped with
the reason.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import trustme

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get(
    "CHECKPOINT_TEST_PG",
    "postgresql://checkpoint_test:checkpoint_test@127.0.0.1:5432/checkpoint_test",
)


@dataclass(frozen=True)
class Tls:
    ca: trustme.CA
    ca_file: Path
    cert_file: Path
    key_file: Path
    directory: Path


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("tls"))


def make_tls(directory: Path) -> Tls:
    """A test CA and a server certificate for 127.0.0.1 and localhost, written to ``directory``
    (also for scripts outside pytest: the crash test)."""
    ca = trustme.CA(organization_name="Province of Tuyen Quang test CA")
    server = ca.issue_cert("127.0.0.1", "localhost")
    ca_file, cert_file, key_file = (directory / n for n in ("ca.pem", "cert.pem", "key.pem"))
    ca.cert_pem.write_to_path(str(ca_file))
    server.private_key_pem.write_to_path(str(key_file))
    server.cert_chain_pems[0].write_to_path(str(cert_file))
    for pem in server.cert_chain_pems[1:]:
        pem.write_to_path(str(cert_file), append=True)
    return Tls(ca, ca_file, cert_file, key_file, directory)


def postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used here, or None."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return (
            f"PostgreSQL at {PG_ADMIN_URL} unavailable ({first}); run provisioning/test-postgres.sh"
        )


@pytest.fixture(scope="session")
def postgres_server() -> str:
    problem = postgres_problem()
    if problem is not None:
        if os.environ.get("CI") and os.environ.get("CHECKPOINT_REQUIRE_PG", "1") == "1":
            pytest.fail(f"CI must run the PostgreSQL tests: {problem}")
        pytest.skip(problem)
    return PG_ADMIN_URL


def fresh_postgres(admin_url: str) -> tuple[str, str]:
    """A new empty database; returns (url, name)."""
    import psycopg

    name = "cp_test_" + secrets.token_hex(6)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}", name


def drop_postgres(admin_url: str, name: str) -> None:
    """Drop a test's database, even with the collector's or an autovacuum worker's connections
    still on it (FORCE ends them; a worker needs pg_signal_backend, which test-postgres.sh
    grants; without it the worker is simply waited out)."""
    import psycopg

    for attempt in range(50):
        try:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            return
        except psycopg.errors.InsufficientPrivilege:
            if attempt == 49:
                raise
            time.sleep(0.1)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The collector's database: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'collector.db'}"
        return
    admin = request.getfixturevalue("postgres_server")
    url, name = fresh_postgres(admin)
    try:
        yield url
    finally:
        drop_postgres(admin, name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def collector_cli(*args: str, database: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector", *args, "--database", database],
        capture_output=True,
        text=True,
        timeout=60,
    )


class Collector:
    """One `checkpoint-collector serve` process; restartable on the same port and database."""

    def __init__(
        self, database: str, tls: Tls, workdir: Path, *, province_key: bytes,
        module: str = "collector",
    ) -> None:  # fmt: skip
        self.database = database
        self.module = module  # what `python -m` runs: another release's collector, say
        self.tls = tls
        self.port = free_port()
        self.key_file = workdir / "province.key"
        self.key_file.write_bytes(province_key)
        self.province_key = province_key
        self.log = workdir / "collector.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    self.module,
                    "serve",
                    "--database",
                    self.database,
                    "--port",
                    str(self.port),
                    "--tls-cert",
                    str(self.tls.cert_file),
                    "--tls-key",
                    str(self.tls.key_file),
                    "--province-key",
                    str(self.key_file),
                    "--log-level",
                    "warning",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,  # where `tests.…` modules are found
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"collector exited {self.proc.returncode}: {self.log_text()}")
            try:
                requests.get(f"{self.url}/healthz", verify=str(self.tls.ca_file), timeout=2)
                return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError(f"collector did not start: {self.log_text()}")

    def stop(self, *, kill: bool = False) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def restart(self, *, kill: bool = True) -> None:
        self.stop(kill=kill)
        self.start()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return collector_cli(*args, database=self.database)

    def code(self, agency: str = "Sở Thông tin và Truyền thông", door: str = "Cửa chính",
             *extra: str) -> str:  # fmt: skip
        result = self.cli("codes", "create", "--agency", agency, "--door", door, *extra)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def role_token(self, role: str) -> str:
        result = self.cli("tokens", "create", "--role", role)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def enroll(self, code: str | None = None) -> dict[str, str]:
        reply = requests.post(
            f"{self.url}/v1/enroll",
            json={"code": code or self.code()},
            verify=str(self.tls.ca_file),
            timeout=10,
        )
        assert reply.status_code == 200, reply.text
        return dict(reply.json())

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        from collector.db import open_database

        db = open_database(self.database)
        try:
            with db.transaction() as tx:
                return tx.all(sql, params)
        finally:
            db.close()


@pytest.fixture
def collector(database_url: str, tls: Tls, tmp_path: Path) -> Iterator[Collector]:
    server = Collector(database_url, tls, tmp_path, province_key=os.urandom(32))
    server.start()
    try:
        yield server
    finally:
        server.stop()
