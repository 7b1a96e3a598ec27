"""Schemathesis against the running collector (issue 15): its OpenAPI document is the sync
protocol's specification, so every answer to generated requests, valid and invalid, must be
one the document describes (status, content type, headers, body), and none a server error.

One collector (`checkpoint-collector serve`, TLS, SQLite) serves the whole module; each
operation is called with every role's token in turn (a door unit's, admin, official, health)
and without one, so refusals are checked as well as answers. A fixed seed and a bounded number
of examples per operation keep the run repeatable and within about two minutes.
"""

from __future__ import annotations

import gzip
import logging
import os
from collections.abc import Iterator
from itertools import count
from typing import Any, Final

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from tests.collector_harness import Collector, Tls, tls  # noqa: F401

SEED: Final = 15
EXAMPLES: Final = 30  # per operation and phase: the whole run fits in about two minutes
CONFIG: Final = {
    "seed": SEED,
    "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
    "checks": {"enabled": True},
    "generation": {"max-examples": EXAMPLES},
    "phases": {"stateful": {"enabled": False}},
    # Where a rule relates two fields (a stay's end not before its start, a report's last day
    # not before its first nor ten years after it), JSON Schema cannot state it: the document
    # says it in words, and a schema-valid request breaking it is refused with its 422.
    "operations": [
        {
            "include-path": path,
            "checks": {
                "positive_data_acceptance": {
                    "expected-statuses": ["2XX", "401", "403", "409", "410", "422"]
                }
            },
        }
        for path in ("/v1/visits", "/v1/reports/adoption", "/v1/exports/entries")
    ],
}


class GzipSession(requests.Session):
    """Sends a body that says ``Content-Encoding: gzip`` gzipped, as door units do (the
    generator only picks the header's value; the body it makes is plain)."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if request.headers.get("Content-Encoding") == "gzip" and request.body is not None:
            body = request.body.encode() if isinstance(request.body, str) else request.body
            request.body = gzip.compress(body)
            request.headers["Content-Length"] = str(len(request.body))
        return super().send(request, **kwargs)


class Fuzzed:
    """The running collector, the tokens of every role, and how many cases it was sent."""

    def __init__(self, server: Collector) -> None:
        self.server = server
        self.tokens: dict[str, str | None] = {
            "device": server.enroll()["token"],
            **{role: server.role_token(role) for role in ("admin", "official", "health")},
            "none": None,
        }
        self.cases = count()
        self.session = GzipSession()

    def headers_for(self, n: int) -> dict[str, str]:
        roles = list(self.tokens.values())
        token = roles[n % len(roles)]
        return {} if token is None else {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def fuzzed(tls: Tls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:  # noqa: F811
    workdir = tmp_path_factory.mktemp("fuzzed-collector")
    server = Collector(
        f"sqlite:///{workdir / 'collector.db'}", tls, workdir, province_key=os.urandom(32)
    )
    server.start()
    fuzzed = Fuzzed(server)
    try:
        yield fuzzed
    finally:
        server.stop()
        sent = next(fuzzed.cases)
        print(f"\nschemathesis: {sent} cases against {server.url}")  # for `pytest -s`
        # The module's one test runs every operation: far fewer cases means generation broke.
        assert sent >= 9 * EXAMPLES, f"only {sent} cases were sent"


@pytest.fixture(scope="module")
def api(fuzzed: Fuzzed) -> Any:
    server = fuzzed.server
    return schemathesis.openapi.from_url(
        f"{server.url}/openapi.json",
        config=schemathesis.Config.from_dict(CONFIG),
        verify=str(server.tls.ca_file),
    )


schema = schemathesis.pytest.from_fixture("api")


@pytest.fixture(autouse=True, scope="module")
def _no_tracebacks_from_the_dbus_thread() -> Iterator[None]:
    """The bluez harness's GLib thread (tests/bluez.py) outlives its tests, and once the mock
    bluetoothd is gone dbus-python logs a traceback for each signal its handlers fail on. On
    CPython 3.11, formatting a traceback parses source (the ``^^^`` lines) through AST state
    that is not thread-safe, so doing it in that thread while this module parses in the main
    one ended the whole session with "AST constructor recursion depth mismatch". Nothing here
    uses D-Bus: the logger is silenced for this module only."""
    logger = logging.getLogger("dbus.connection")
    was = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = was


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """Schemathesis 4.32's lazy schema names each operation's subtest through ``Node._nodeid``,
    which pytest 9 no longer has; give it the attribute it reads and writes."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True)
def test_the_collector_answers_as_its_openapi_document_says(case: Any, fuzzed: Fuzzed) -> None:
    n = next(fuzzed.cases)
    case.call_and_validate(
        base_url=fuzzed.server.url,
        session=fuzzed.session,
        headers=fuzzed.headers_for(n),
        verify=str(fuzzed.server.tls.ca_file),
        timeout=30,
    )
