"""The fault-injecting proxy used by end-to-end tests does what each Fault says, against a real
HTTPS server (a tiny stdlib one, with a trustme certificate)."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import trustme

from tests.faultproxy import (
    DEFAULT_FAULTS,
    CountingProxy,
    Fault,
    FaultProxy,
    cut_point,
    parse_chunked,
    random_plan,
)

TIMEOUT = 5.0
PAD = "x" * 512  # makes every echo response body long enough to be cut in the middle


# -- a real HTTPS server ----------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    length: int


@dataclass
class EchoLog:
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[Seen] = field(default_factory=list)

    @property
    def posts(self) -> list[Seen]:
        with self.lock:
            return [r for r in self.requests if r.method == "POST"]

    def wait_posts(self, n: int, timeout: float = TIMEOUT) -> int:
        deadline = time.monotonic() + timeout
        while len(self.posts) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return len(self.posts)


class _EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = TIMEOUT
    server: _EchoServer

    def _record(self, length: int) -> None:
        seen = Seen(
            self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, length
        )
        with self.server.log.lock:
            self.server.log.requests.append(seen)

    def _reply(self, payload: dict[str, object]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._record(len(body))  # before replying: the server has "processed" it
        self._reply({"length": len(body), "pad": PAD})

    def do_GET(self) -> None:
        self._record(0)
        self._reply({"path": self.path, "pad": PAD})

    def log_message(self, format: str, *args: object) -> None:
        pass


class _EchoServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, ctx: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _EchoHandler)
        self.ctx = ctx
        self.log = EchoLog()

    def finish_request(self, request, client_address):  # type: ignore[no-untyped-def]
        # TLS handshake in the worker thread, not in the accept loop.
        request.settimeout(TIMEOUT)
        with self.ctx.wrap_socket(request, server_side=True) as tls:
            _EchoHandler(tls, client_address, self)

    def handle_error(self, request, client_address):  # type: ignore[no-untyped-def]
        pass  # clients (the proxy) hanging up are expected here


@dataclass
class Tls:
    ca: trustme.CA
    ca_pem: str
    server_ssl: ssl.SSLContext
    upstream_ssl: ssl.SSLContext


@dataclass
class Server:
    host: str
    port: int
    log: EchoLog

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    ca = trustme.CA()
    ca_pem = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_ssl)
    upstream_ssl = ssl.create_default_context()
    ca.configure_trust(upstream_ssl)
    return Tls(ca, str(ca_pem), server_ssl, upstream_ssl)


def _start_server(tls: Tls) -> tuple[_EchoServer, threading.Thread]:
    httpd = _EchoServer(tls.server_ssl)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return httpd, thread


@pytest.fixture
def server(tls: Tls) -> Iterator[Server]:
    httpd, thread = _start_server(tls)
    yield Server("127.0.0.1", httpd.server_address[1], httpd.log)
    httpd.shutdown()
    httpd.server_close()
    thread.join(TIMEOUT)


@pytest.fixture
def make_proxy(tls: Tls, server: Server) -> Iterator[Callable[..., FaultProxy]]:
    """``make_proxy(plan=..., delay_s=...)``: a started FaultProxy in front of ``server``."""
    proxies: list[FaultProxy] = []

    def make(**kwargs: object) -> FaultProxy:
        kwargs.setdefault("server_ssl", tls.server_ssl)
        kwargs.setdefault("upstream_ssl", tls.upstream_ssl)
        proxy = FaultProxy(server.host, server.port, timeout=TIMEOUT, **kwargs)  # type: ignore[arg-type]
        proxy.start()
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.stop()
        assert proxy.active == 0, "proxy threads survived stop()"


def always(fault: Fault) -> Callable[[int, str, str], Fault]:
    return lambda index, method, path: fault


def post(
    tls: Tls, url: str, data: bytes | Iterator[bytes] = b"hello", timeout: float = TIMEOUT
) -> requests.Response:
    return requests.post(url + "/upload", data=data, verify=tls.ca_pem, timeout=timeout)


def raw_tls_exchange(tls: Tls, port: int, request: bytes) -> bytes:
    """Send raw bytes over TLS to ``port`` and read everything until the peer closes."""
    ctx = ssl.create_default_context(cafile=tls.ca_pem)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
    ):
        sock.sendall(request)
        data = bytearray()
        while chunk := sock.recv(65536):
            data += chunk
        return bytes(data)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- each fault -------------------------------------------------------------------------------


def test_pass_round_trip(tls: Tls, server: Server, make_proxy: Callable[..., FaultProxy]) -> None:
    proxy = make_proxy()
    assert proxy.url == f"https://127.0.0.1:{proxy.port}" and proxy.port != 0

    response = post(tls, proxy.url, b"x" * 1000)

    assert response.status_code == 200
    assert response.json()["length"] == 1000
    assert response.headers["Connection"] == "close"
    (seen,) = server.log.posts
    assert seen.path == "/upload" and seen.length == 1000
    assert seen.headers["connection"] == "close"
    assert proxy.requests == 1 and proxy.counts == {Fault.PASS: 1}
    assert proxy.upstream_errors == 0


def test_pass_chunked_request_body(
    tls: Tls, server: Server, make_proxy: Callable[..., FaultProxy]
) -> None:
    proxy = make_proxy()

    # A generator makes requests send Transfer-Encoding: chunked.
    response = post(tls, proxy.url, iter([b"a" * 300, b"b" * 700, b"c"]))

    assert response.status_code == 200 and response.json()["length"] == 1001
    (seen,) = server.log.posts
    assert seen.length == 1001
    assert seen.headers["content-length"] == "1001" and "transfer-encoding" not in seen.headers


def test_many_concurrent_requests_pass(
    tls: Tls, server: Server, make_proxy: Callable[..., FaultProxy]
) -> None:
    proxy = make_proxy()
    results: list[int] = []

    def worker(i: int) -> None:
        results.append(post(tls, proxy.url, b"z" * i).json()["length"])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT * 2)

    assert sorted(results) == list(range(12))
    assert len(server.log.posts) == 12 and proxy.requests == 12


def test_drop(tls: Tls, server: Server, make_proxy: Callable[..., FaultProxy]) -> None:
    proxy = make_proxy(plan=always(Fault.DROP))

    with pytest.raises(requests.ConnectionError):
        post(tls, proxy.url)

    assert proxy.wait_idle()
    assert server.log.requests == []
    assert proxy.counts == {Fault.DROP: 1}


def test_delay_longer_than_client_timeout(
    tls: Tls, server: Server, make_proxy: Callable[..., FaultProxy]
) -> None:
    proxy = make_proxy(plan=always(Fault.DELAY), delay_s=1.5)

    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        post(tls, proxy.url, b"late", timeout=0.3)

    assert time.monotonic() - started < 1.4
    assert server.log.wait_posts(1) == 1  # the server did process it
    assert server.log.posts[0].length == 4
    assert proxy.counts == {Fault.DELAY: 1}


def test_delay_shorter_than_client_timeout(
    tls: Tls, server: Server, make_proxy: Callable[..., FaultProxy]
) -> None:
    proxy = make_proxy(plan=always(Fault.DELAY), delay_s=0.3)

    started = time.monotonic()
    response = post(tls, proxy.url, b"slow")

    assert time.monotonic() - started >= 0.3
    assert response.status_code == 200 and response.json()["length"] == 4


def test_error_before(tls: Tls, server: Server, make_proxy: Callable[..., FaultProxy]) -> None:
    proxy = make_proxy(plan=always(Fault.ERROR_BEFORE))

    response = post(tls, proxy.url)

    assert response.status_code == 503
    assert response.json() == {"detail": "injected"}
    assert server.log.requests == []
    assert proxy.counts == {Fault.ERROR_BEFORE: 1}


def test_error_after(tls: Tls, server: Server, make_proxy: Callable[..., FaultProxy]) -> None:
    proxy = make_proxy(plan=always(Fault.ERROR_AFTER))

    response = post(tls, proxy.url, b"12345")

    assert response.status_code == 502
    assert response.json() == {"detail": "injected"}
    assert [p.length for p in server.log.posts] == [5]
    assert proxy.counts == {Fault.ERROR_AFTER: 1} and proxy.upstream_errors == 0


def test_cut(tls: Tls, server: Server, make_proxy: Callable[..., FaultProxy]) -> None:
    proxy = make_proxy(plan=always(Fault.CUT))

    with pytest.raises(
        (
            requests.exceptions.ChunkedEncodingError,
            requests.ConnectionError,
            requests.exceptions.ContentDecodingError,
            requests.exceptions.JSONDecodeError,
        )
    ):
        post(tls, proxy.url, b"cut me").json()

    assert [p.length for p in server.log.posts] == [6]
    assert proxy.counts == {Fault.CUT: 1}


def test_cut_keeps_the_headers_and_half_the_body(
    tls: Tls, server: Server, make_proxy: Callable[..., FaultProxy]
) -> None:
    proxy = make_proxy(plan=always(Fault.CUT))

    data = raw_tls_exchange(
        tls, proxy.port, b"GET /thing HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )

    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, "the whole head must get through"
    assert head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n")[0]
    length = int(
        next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        .split(b":")[1]
        .strip()
    )
    assert 0 < len(body) < length  # cut inside the body
    assert body == json.dumps({"path": "/thing", "pad": PAD}).encode()[: len(body)]


def test_plan_sees_index_method_and_path(
    tls: Tls, server: Server, make_proxy: Callable[..., FaultProxy]
) -> None:
    calls: list[tuple[int, str, str]] = []

    def plan(index: int, method: str, path: str) -> Fault:
        calls.append((index, method, path))
        return Fault.ERROR_BEFORE if path == "/blocked" else Fault.PASS

    proxy = make_proxy(plan=plan)

    first = requests.get(proxy.url + "/a?x=1", verify=tls.ca_pem, timeout=TIMEOUT)
    second = requests.post(proxy.url + "/blocked", data=b"", verify=tls.ca_pem, timeout=TIMEOUT)
    third = post(tls, proxy.url)

    assert [first.status_code, second.status_code, third.status_code] == [200, 503, 200]
    assert first.json()["path"] == "/a?x=1"  # the query still reaches the server
    assert calls == [(0, "GET", "/a"), (1, "POST", "/blocked"), (2, "POST", "/upload")]
    assert proxy.requests == 3 and proxy.counts == {Fault.PASS: 2, Fault.ERROR_BEFORE: 1}


def test_random_plan_through_the_proxy(
    tls: Tls, server: Server, make_proxy: Callable[..., FaultProxy]
) -> None:
    faults = (Fault.ERROR_BEFORE, Fault.ERROR_AFTER)
    plan = random_plan(7, fault_rate=0.5, faults=faults)
    proxy = make_proxy(plan=plan)
    expected = [plan(i, "POST", "/upload") for i in range(12)]

    statuses = [post(tls, proxy.url).status_code for _ in range(12)]

    codes = {Fault.PASS: 200, Fault.ERROR_BEFORE: 503, Fault.ERROR_AFTER: 502}
    assert statuses == [codes[f] for f in expected]
    reached = sum(f is not Fault.ERROR_BEFORE for f in expected)
    assert len(server.log.posts) == reached
    assert sum(proxy.counts.values()) == 12


# -- random_plan ------------------------------------------------------------------------------


def test_random_plan_is_deterministic() -> None:
    a = random_plan(42)
    b = random_plan(42)
    sequence = [a(i, "POST", "/x") for i in range(300)]

    assert sequence == [b(i, "GET", "/other") for i in range(300)]
    # Independent of the order in which requests ask.
    assert [b(i, "POST", "/x") for i in reversed(range(300))] == sequence[::-1]
    assert sequence != [random_plan(43)(i, "POST", "/x") for i in range(300)]
    passes = sequence.count(Fault.PASS)
    assert 100 < passes < 200  # about half
    assert {f for f in sequence if f is not Fault.PASS} == set(DEFAULT_FAULTS)


def test_random_plan_rate_and_faults() -> None:
    assert {random_plan(1, fault_rate=0.0)(i, "GET", "/") for i in range(200)} == {Fault.PASS}
    only_cut = {
        random_plan(1, fault_rate=1.0, faults=[Fault.CUT])(i, "GET", "/") for i in range(50)
    }
    assert only_cut == {Fault.CUT}
    mostly = [random_plan(3, fault_rate=0.9)(i, "GET", "/") for i in range(1000)]
    assert 850 < sum(f is not Fault.PASS for f in mostly) < 950
    with pytest.raises(ValueError):
        random_plan(1, fault_rate=1.5)
    with pytest.raises(ValueError):
        random_plan(1, faults=())


# -- upstream failures and misbehaving clients ------------------------------------------------


def test_upstream_down_gives_502_then_recovers(tls: Tls, server: Server) -> None:
    with FaultProxy(
        "127.0.0.1",
        free_port(),
        server_ssl=tls.server_ssl,
        upstream_ssl=tls.upstream_ssl,
        timeout=TIMEOUT,
    ) as proxy:
        down = post(tls, proxy.url)
        assert down.status_code == 502
        assert down.json()["detail"].startswith("upstream unavailable")
        assert proxy.upstream_errors == 1

        proxy.set_upstream(server.host, server.port)  # "the server came back"
        up = post(tls, proxy.url, b"back")
        assert up.status_code == 200 and up.json()["length"] == 4
        assert proxy.upstream_errors == 1 and proxy.counts == {Fault.PASS: 2}


def test_upstream_dies_gives_502(tls: Tls) -> None:
    # A TLS server that accepts, reads the request and hangs up without a response.
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT)

    def rude() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        conn.settimeout(TIMEOUT)
        try:
            with tls.server_ssl.wrap_socket(conn, server_side=True) as sock:
                sock.recv(65536)
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\ntoo short")
        except OSError:
            pass

    thread = threading.Thread(target=rude, daemon=True)
    thread.start()
    try:
        with FaultProxy(
            "127.0.0.1",
            listener.getsockname()[1],
            server_ssl=tls.server_ssl,
            upstream_ssl=tls.upstream_ssl,
            timeout=TIMEOUT,
        ) as proxy:
            response = post(tls, proxy.url)
            assert response.status_code == 502
            assert proxy.upstream_errors == 1
    finally:
        listener.close()
        thread.join(TIMEOUT)


def test_untrusted_upstream_certificate_gives_502(tls: Tls, server: Server) -> None:
    strict = ssl.create_default_context()
    trustme.CA().configure_trust(strict)  # another CA: the server's certificate is not trusted
    with FaultProxy(
        server.host, server.port, server_ssl=tls.server_ssl, upstream_ssl=strict, timeout=TIMEOUT
    ) as proxy:
        assert post(tls, proxy.url).status_code == 502
        assert proxy.upstream_errors == 1
    assert server.log.requests == []


def test_clients_that_hang_up_early(
    tls: Tls, server: Server, make_proxy: Callable[..., FaultProxy]
) -> None:
    proxy = make_proxy()
    ctx = ssl.create_default_context(cafile=tls.ca_pem)
    # TCP only, no TLS handshake.
    socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT).close()
    # Half a request head.
    with (
        socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
    ):
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: 127")
    # A whole head but half the body.
    with (
        socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
    ):
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort")

    assert proxy.wait_idle()
    assert proxy.connections == 3 and proxy.requests == 0
    assert server.log.requests == []
    assert post(tls, proxy.url).status_code == 200  # and the proxy still works


def test_malformed_request_gets_400(
    tls: Tls, server: Server, make_proxy: Callable[..., FaultProxy]
) -> None:
    proxy = make_proxy()

    data = raw_tls_exchange(tls, proxy.port, b"NONSENSE\r\n\r\n")

    assert data.startswith(b"HTTP/1.1 400 ")
    assert proxy.requests == 0 and server.log.requests == []


def test_stop_ends_everything_promptly(tls: Tls, server: Server) -> None:
    proxy = FaultProxy(
        server.host,
        server.port,
        server_ssl=tls.server_ssl,
        upstream_ssl=tls.upstream_ssl,
        plan=always(Fault.DELAY),
        delay_s=30.0,
    )
    proxy.start()
    ctx = ssl.create_default_context(cafile=tls.ca_pem)
    idle = socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT)
    idle_tls = ctx.wrap_socket(idle, server_hostname="127.0.0.1")  # connected, never sends
    errors: list[BaseException] = []

    def delayed() -> None:
        try:
            post(tls, proxy.url, timeout=TIMEOUT)
        except requests.RequestException as exc:
            errors.append(exc)

    client = threading.Thread(target=delayed, daemon=True)
    client.start()
    assert server.log.wait_posts(1) == 1
    assert proxy.active == 2

    started = time.monotonic()
    proxy.stop()

    assert time.monotonic() - started < 2.0
    assert proxy.active == 0
    prefix = f"faultproxy-{proxy.port}-"
    assert not [t for t in threading.enumerate() if t.name.startswith(prefix)]
    client.join(TIMEOUT)
    assert len(errors) == 1  # the delayed client was hung up on, not left waiting
    assert idle_tls.recv(1) == b""  # and so was the idle one
    idle_tls.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT).close()


# -- helpers ----------------------------------------------------------------------------------


def test_cut_point_is_inside_the_body() -> None:
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd"
    assert cut_point(response) == len(response) - 2
    big = b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 1000
    assert cut_point(big) == len(big) // 2
    no_body = b"HTTP/1.1 204 No Content\r\n\r\n"
    assert 0 < cut_point(no_body) < len(no_body)


def test_parse_chunked() -> None:
    assert parse_chunked(b"3\r\nabc\r\n0\r\n\r\nrest") == (b"abc", 13)
    assert parse_chunked(b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n")[0] == b"abcde"  # type: ignore[index]
    assert parse_chunked(b"3\r\nab") is None
    assert parse_chunked(b"3\r\nabc\r\n0\r\n") is None
    with pytest.raises(ValueError):
        parse_chunked(b"zz\r\n")


# -- CountingProxy ----------------------------------------------------------------------------


def test_counting_proxy_counts_bytes_and_keeps_tls_end_to_end(
    tls: Tls, server: Server, tmp_path: Path
) -> None:
    with CountingProxy(server.host, server.port) as counter:
        assert counter.url == f"https://127.0.0.1:{counter.port}"
        with requests.Session() as session:
            # Verified against the *server's* certificate: the proxy does not touch TLS.
            response = session.post(
                counter.url + "/upload", data=b"y" * 5000, verify=tls.ca_pem, timeout=TIMEOUT
            )
        assert response.status_code == 200 and response.json()["length"] == 5000
        # Counted as they are forwarded, so final once the response is in (the pooled
        # connection itself stays open until stop()).
        assert counter.connections == 1
        assert counter.bytes_up > 5000  # the body, the head and the TLS overhead
        assert counter.bytes_down > len(PAD)
        assert [p.length for p in server.log.posts] == [5000]
    assert counter.active == 0  # stop() ended the idle keep-alive connection too


def test_counting_proxy_with_dead_upstream(tls: Tls) -> None:
    with CountingProxy("127.0.0.1", free_port()) as counter:
        with pytest.raises(requests.ConnectionError):
            requests.get(counter.url, verify=tls.ca_pem, timeout=TIMEOUT)
        assert counter.connections == 1
        assert counter.bytes_up == 0 and counter.bytes_down == 0
