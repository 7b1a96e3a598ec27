"""Sync: a unit's 100,000-record backlog uploaded to a local collector over TLS, the bytes that
cost on the wire, and the collector's ingest rate on PostgreSQL.

The collector runs as its own process (`checkpoint-collector serve`, uvicorn, TLS with trustme
certificates) on 127.0.0.1; the device side is the real uploader (`appliance.sync`). Bytes on
the wire are counted by a TCP pass-through proxy, so they include TLS and HTTP headers, both
directions. The benchmark runner pins itself to one core; the collector is a separate machine
in real life, so here it is given every core.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import statistics
import tempfile
import threading
import time
import uuid as uuidlib
from pathlib import Path
from typing import Any

import requests

from appliance.core.doorway import Entry
from appliance.store import VisitLog
from appliance.store.outbox import Outbox
from appliance.sync.client import CollectorClient
from appliance.sync.tuning import SyncTuning
from appliance.sync.uploader import Uploader
from bench.results import Figure

BACKLOG = 100_000
INGEST_RECORDS = 30_000
INGEST_BATCH = 500
INGEST_CLIENTS = 4
TARGET_BACKLOG_S = 60.0


def _fill(db: Path, n: int, seed: int = 1) -> None:
    """A week of a busy door: n entries, 60 % with app (each with two tokens)."""
    rng = random.Random(seed)
    log = VisitLog(db)
    t = time.time() - 7 * 86400
    for i in range(n):
        t += rng.uniform(1, 10)
        u = str(uuidlib.UUID(int=rng.getrandbits(128), version=4))
        if rng.random() < 0.6:
            tokens = ((f"{rng.getrandbits(128):032x}", t), (f"{rng.getrandbits(128):032x}", t + 1))
            log.record(Entry(u, "app", t, protocol="bluezone", tokens=tokens))
        else:
            log.record(Entry(u, "no_app", t, via_sensor=True))
        if i % 5000 == 4999:
            log.flush()
    log.close()


def _records(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    t = time.time() - 86400
    out = []
    for _ in range(n):
        t += 1
        record: dict[str, Any] = {
            "uuid": str(uuidlib.UUID(int=rng.getrandbits(128), version=4)),
            "entered_at": t,
            "clock_synced": True,
        }
        if rng.random() < 0.6:
            record.update(kind="app", protocol="gaen", tokens=[f"{rng.getrandbits(128):032x}"])
        else:
            record.update(kind="no_app", via_sensor=True)
        out.append(record)
    return out


def _backlog(tls: Any, workdir: Path) -> list[Figure]:
    from tests.collector_harness import Collector
    from tests.faultproxy import CountingProxy

    server = Collector(
        f"sqlite:///{workdir / 'collector.db'}", tls, workdir, province_key=os.urandom(32)
    )
    server.start()
    try:
        token = server.enroll()["token"]
        db = workdir / "device.db"
        _fill(db, BACKLOG)
        with CountingProxy("127.0.0.1", server.port) as proxy:
            client = CollectorClient(proxy.url, token=token, ca_file=tls.ca_file, timeout=60)
            uploader = Uploader(lambda: Outbox(db), client, SyncTuning(batch_size=500))
            start = time.perf_counter()
            result = uploader.push()
            elapsed = time.perf_counter() - start
            body = client.bytes_sent
            client.close()
            wire = proxy.bytes_up + proxy.bytes_down
        stored = server.query("SELECT count(*) FROM visits")[0][0]
        if result.sent != BACKLOG or stored != BACKLOG:
            raise RuntimeError(f"backlog bench: sent {result.sent}, stored {stored}")
    finally:
        server.stop()
    return [
        Figure(
            "sync_backlog_100k", elapsed, "s", TARGET_BACKLOG_S, "lower",
            f"{BACKLOG:,} records, {result.batches} batches of 500, SQLite collector over TLS",
        ),
        Figure("sync_backlog_rate", BACKLOG / elapsed, "records/s", None, "higher"),
        Figure(
            "sync_wire_bytes_per_record", wire / BACKLOG, "bytes", None, "lower",
            "TLS + HTTP both ways, counted at TCP; 60 % app records with two tokens",
        ),
        Figure("sync_body_bytes_per_record", body / BACKLOG, "bytes", None, "lower",
               "gzip JSON request bodies only"),
    ]  # fmt: skip


def _post_all(url: str, token: str, ca_file: str, bodies: list[bytes]) -> float:
    """Post every body from INGEST_CLIENTS threads; returns the seconds it took."""
    queue = list(bodies)
    lock = threading.Lock()
    errors: list[str] = []
    headers = {"Authorization": f"Bearer {token}", "Content-Encoding": "gzip",
               "Content-Type": "application/json"}  # fmt: skip

    def worker() -> None:
        session = requests.Session()
        while True:
            with lock:
                if not queue:
                    return
                body = queue.pop()
            reply = session.post(f"{url}/v1/visits", data=body, headers=headers, verify=ca_file,
                                 timeout=60)  # fmt: skip
            if reply.status_code != 200 or reply.json()["new"] != INGEST_BATCH:
                errors.append(reply.text[:200])

    threads = [threading.Thread(target=worker) for _ in range(INGEST_CLIENTS)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"ingest bench: {errors[0]}")
    return elapsed


def _ingest_postgres(tls: Any, workdir: Path) -> list[Figure]:
    from tests.collector_harness import (
        PG_ADMIN_URL,
        Collector,
        drop_postgres,
        fresh_postgres,
        postgres_problem,
    )

    problem = postgres_problem()
    if problem is not None:
        print(f"  collector_ingest_postgres skipped: {problem}")
        return []
    url, name = fresh_postgres(PG_ADMIN_URL)
    server = Collector(url, tls, workdir, province_key=os.urandom(32))
    server.start()
    try:
        token = server.enroll()["token"]
        rates = []
        for run in range(3):
            records = _records(INGEST_RECORDS, seed=run)
            bodies = [
                gzip.compress(json.dumps({"records": records[i : i + INGEST_BATCH]}).encode())
                for i in range(0, len(records), INGEST_BATCH)
            ]
            elapsed = _post_all(server.url, token, str(tls.ca_file), bodies)
            rates.append(INGEST_RECORDS / elapsed)
    finally:
        server.stop()
        drop_postgres(PG_ADMIN_URL, name)
    return [
        Figure(
            "collector_ingest_postgres", statistics.median(rates), "records/s", None, "higher",
            f"median of 3 × {INGEST_RECORDS:,} new records, batches of {INGEST_BATCH},"
            f" {INGEST_CLIENTS} concurrent units, one uvicorn worker, TLS",
        )
    ]  # fmt: skip


def run() -> list[Figure]:
    import trustme

    from tests.collector_harness import Tls

    pinned = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if pinned is not None:
        os.sched_setaffinity(0, range(os.cpu_count() or 1))  # the collector is another machine
    try:
        with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
            workdir = Path(tmp)
            ca = trustme.CA()
            cert = ca.issue_cert("127.0.0.1", "localhost")
            files = [workdir / n for n in ("ca.pem", "cert.pem", "key.pem")]
            ca.cert_pem.write_to_path(str(files[0]))
            cert.cert_chain_pems[0].write_to_path(str(files[1]))
            cert.private_key_pem.write_to_path(str(files[2]))
            tls = Tls(ca, files[0], files[1], files[2], workdir)
            backlog_dir = workdir / "backlog"
            ingest_dir = workdir / "ingest"
            backlog_dir.mkdir()
            ingest_dir.mkdir()
            return _backlog(tls, backlog_dir) + _ingest_postgres(tls, ingest_dir)
    finally:
        if pinned is not None:
            os.sched_setaffinity(0, pinned)
