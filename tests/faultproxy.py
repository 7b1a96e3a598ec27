"""A small fault-injecting HTTPS reverse proxy for end-to-end tests.

``FaultProxy`` sits on loopback between an HTTP client and a real HTTPS server. It terminates
TLS with its own certificate, reads one HTTP/1.1 request per client connection, asks a *plan*
which :class:`Fault` to apply, and then forwards (or not) the request over a fresh TLS
connection to the upstream server and relays (or mangles) the response.

``CountingProxy`` is a plain TCP pass-through (TLS untouched) that counts the bytes on the
wire in each direction.

Both are stdlib only, use daemon threads, put a timeout on every blocking socket call and
close every socket they own on ``stop()``, so a misbehaving client or server can never hang
a test for longer than ``timeout`` seconds.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import json
import logging
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType

log = logging.getLogger(__name__)

MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024
RECV_SIZE = 64 * 1024

# Headers that describe one hop; they are dropped when forwarding and rewritten by the proxy.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "content-length",
        "expect",
        "te",
        "trailer",
        "upgrade",
    }
)


class Fault(enum.Enum):
    PASS = "pass"  # forward request, relay full response
    DROP = "drop"  # close the client connection without forwarding anything upstream
    DELAY = "delay"  # forward at once, wait `delay_s` before relaying the response
    ERROR_BEFORE = "503"  # reply 503 {"detail": "injected"} without forwarding
    ERROR_AFTER = "502"  # forward (server processes it), discard its response, reply 502
    CUT = "cut"  # forward, relay only the first half of the response, then close abruptly


DEFAULT_FAULTS: tuple[Fault, ...] = (
    Fault.DROP,
    Fault.DELAY,
    Fault.ERROR_BEFORE,
    Fault.ERROR_AFTER,
    Fault.CUT,
)

Plan = Callable[[int, str, str], Fault]


def always_pass(index: int, method: str, path: str) -> Fault:
    """The default plan: every request goes through untouched."""
    return Fault.PASS


def random_plan(
    seed: int, fault_rate: float = 0.5, faults: Sequence[Fault] = DEFAULT_FAULTS
) -> Plan:
    """A deterministic random plan: ``PASS`` with probability ``1 - fault_rate``, otherwise one
    of ``faults`` uniformly. The decision depends only on ``seed`` and the request index, not
    on the order in which concurrent requests ask for it."""
    if not 0.0 <= fault_rate <= 1.0:
        raise ValueError(f"fault_rate must be within [0, 1], not {fault_rate}")
    choices = tuple(faults)
    if fault_rate > 0 and not choices:
        raise ValueError("faults must not be empty when fault_rate > 0")

    def plan(index: int, method: str, path: str) -> Fault:
        rng = random.Random(f"{seed}:{index}")
        if rng.random() >= fault_rate:
            return Fault.PASS
        return rng.choice(choices)

    return plan


class _ClientGone(Exception):
    """The client closed the connection before sending a whole request."""


class _BadRequest(Exception):
    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


class _UpstreamError(Exception):
    """The upstream refused the connection, failed TLS, died or sent a broken response."""


def _shutdown(sock: socket.socket) -> None:
    """Wake up any thread blocked on ``sock`` (also an ``SSLSocket``) without closing it."""
    # The plain socket method, bypassing SSLSocket.shutdown, which drops its SSL object.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _close(sock: socket.socket | None) -> None:
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.close()


def parse_chunked(buf: bytes) -> tuple[bytes, int] | None:
    """Decode a chunked body at the start of ``buf``: ``(body, end offset)``, or ``None`` if it
    is not complete yet. Raises ``ValueError`` if it is malformed."""
    body = bytearray()
    pos = 0
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            if len(buf) - pos > 1024:
                raise ValueError("chunk size line too long")
            return None
        size_text = buf[pos:line_end].split(b";", 1)[0].strip()
        size = int(size_text, 16)  # ValueError if malformed
        if size < 0:
            raise ValueError("negative chunk size")
        pos = line_end + 2
        if size == 0:
            # Optional trailers, then an empty line.
            if buf[pos : pos + 2] == b"\r\n":
                return bytes(body), pos + 2
            if len(buf) - pos < 2:
                return None
            trailer_end = buf.find(b"\r\n\r\n", pos)
            if trailer_end < 0:
                return None
            return bytes(body), trailer_end + 4
        if len(buf) < pos + size + 2:
            return None
        body += buf[pos : pos + size]
        if buf[pos + size : pos + size + 2] != b"\r\n":
            raise ValueError("chunk not followed by CRLF")
        pos += size + 2


def _parse_headers(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    """Split a message head (without the final blank line) into its first line and headers."""
    lines = head.decode("latin-1").split("\r\n")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise ValueError(f"malformed header line {line!r}")
        headers.append((name, value.strip()))
    return lines[0], headers


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    values = [v for k, v in headers if k.lower() == name]
    return ", ".join(values) if values else None


def _is_chunked(headers: list[tuple[str, str]]) -> bool:
    te = _header(headers, "transfer-encoding")
    return te is not None and "chunked" in te.lower()


def response_end(data: bytes, method: str, *, eof: bool = False) -> int | None:
    """Where the HTTP response at the start of ``data`` ends, or ``None`` if not complete yet.
    With ``eof=True`` a close-delimited body is complete at the end of ``data``. Raises
    ``ValueError`` for a malformed head."""
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    body_start = head_end + 4
    status_line, headers = _parse_headers(data[:head_end])
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise ValueError(f"malformed status line {status_line!r}")
    status = int(parts[1])
    if status < 200:
        # An interim response (100 Continue, 103 Early Hints): the real one follows it.
        rest = response_end(data[body_start:], method, eof=eof)
        return None if rest is None else body_start + rest
    if method == "HEAD" or status in (204, 304):
        return body_start
    if _is_chunked(headers):
        parsed = parse_chunked(data[body_start:])
        return None if parsed is None else body_start + parsed[1]
    length = _header(headers, "content-length")
    if length is not None:
        n = int(length.split(",")[0])
        return body_start + n if len(data) >= body_start + n else None
    return len(data) if eof else None


def force_close(response: bytes) -> bytes:
    """Rewrite the response's ``Connection`` header to ``close``: the proxy serves one request
    per client connection, so the client must not try to reuse it."""
    head_end = response.find(b"\r\n\r\n")
    if head_end < 0:
        return response
    lines = response[:head_end].split(b"\r\n")
    kept = [lines[0]] + [
        line
        for line in lines[1:]
        if line.split(b":", 1)[0].strip().lower() not in (b"connection", b"keep-alive")
    ]
    kept.append(b"Connection: close")
    return b"\r\n".join(kept) + response[head_end:]


def cut_point(response: bytes) -> int:
    """Half of the response, but inside the body when it has one (so headers get through)."""
    total = len(response)
    head_end = response.find(b"\r\n\r\n")
    body_start = head_end + 4 if head_end >= 0 else total
    body_len = total - body_start
    if body_len <= 0:
        return total // 2
    if total // 2 > body_start:
        return total // 2
    return body_start + body_len // 2


def _simple_response(status: int, reason: str, detail: str) -> bytes:
    body = json.dumps({"detail": detail}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n"
        "\r\n"
    )
    return head.encode("ascii") + body


class _Reader:
    """Buffered reads from a socket, with limits."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> None:
        chunk = self.sock.recv(RECV_SIZE)
        if not chunk:
            raise _ClientGone
        self.buf += chunk

    def read_until(self, sep: bytes, limit: int) -> bytes:
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out = bytes(self.buf[: i + len(sep)])
                del self.buf[: i + len(sep)]
                return out
            if len(self.buf) > limit:
                raise _BadRequest(431, "Request Header Fields Too Large", "head too large")
            self._fill()

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_chunked(self, limit: int) -> bytes:
        while True:
            try:
                parsed = parse_chunked(bytes(self.buf))
            except ValueError as exc:
                raise _BadRequest(400, "Bad Request", f"bad chunked body: {exc}") from exc
            if parsed is not None:
                body, end = parsed
                del self.buf[:end]
                return body
            if len(self.buf) > limit:
                raise _BadRequest(413, "Content Too Large", "body too large")
            self._fill()


class _ThreadedServer:
    """Accept loop and connection threads shared by both proxies: every socket and thread is
    tracked so that ``stop()`` can wake them all up and wait for them."""

    _name = "proxy"

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._threads: set[threading.Thread] = set()
        self._sockets: set[socket.socket] = set()
        self.connections = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._listener is not None or self._stopping.is_set():
            raise RuntimeError(f"{type(self).__name__} can only be started once")
        listener = socket.create_server((self.host, self.port), backlog=128)
        # Poll so the accept loop notices stop() even where close() does not wake accept().
        listener.settimeout(0.1)
        self._listener = listener
        self.port = listener.getsockname()[1]
        thread = threading.Thread(
            target=self._accept_loop, name=f"{self._name}-{self.port}-accept", daemon=True
        )
        self._accept_thread = thread
        thread.start()

    def stop(self, join_timeout: float = 5.0) -> None:
        with self._lock:
            self._stopping.set()
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)
        deadline = time.monotonic() + join_timeout
        if self._accept_thread is not None:
            self._accept_thread.join(max(0.0, deadline - time.monotonic()))
        if self._listener is not None:
            _close(self._listener)
        while True:
            with self._lock:
                threads = list(self._threads)
            if not threads:
                break
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
            if time.monotonic() >= deadline:
                log.warning("%s: %d threads still running after stop()", self._name, len(threads))
                break

    @property
    def running(self) -> bool:
        return self._listener is not None and not self._stopping.is_set()

    @property
    def active(self) -> int:
        """Connections being handled right now."""
        with self._lock:
            return len(self._threads)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no connection is being handled; ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        while self.active:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    # -- bookkeeping -------------------------------------------------------------------------

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)
            stopping = self._stopping.is_set()
        if stopping:  # stop() already ran over the set: wake this one up ourselves
            _shutdown(sock)

    def _untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def _release(self, sock: socket.socket | None) -> None:
        if sock is not None:
            self._untrack(sock)
            _close(sock)

    def _spawn(self, target: Callable[..., None], *args: object, kind: str = "conn") -> bool:
        """Run ``target(*args)`` in a tracked daemon thread; ``False`` if stopping already."""
        thread = threading.Thread(
            target=self._run_thread,
            args=(target, *args),
            name=f"{self._name}-{self.port}-{kind}",
            daemon=True,
        )
        with self._lock:
            if self._stopping.is_set():
                return False
            self._threads.add(thread)
        thread.start()
        return True

    def _run_thread(self, target: Callable[..., None], *args: object) -> None:
        try:
            target(*args)
        except Exception:
            log.exception("%s: unexpected error in connection thread", self._name)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                # E.g. out of file descriptors: keep serving once some are freed.
                log.exception("%s: accept failed", self._name)
                self._stopping.wait(0.05)
                continue
            conn.settimeout(self.timeout)
            with self._lock:
                self.connections += 1
            self._track(conn)
            if not self._spawn(self._handle_connection, conn):
                self._release(conn)
                return

    def _handle_connection(self, conn: socket.socket) -> None:
        raise NotImplementedError


class FaultProxy(_ThreadedServer):
    """An HTTPS reverse proxy that applies a :class:`Fault` to each request, as ``plan``
    decides. One request per client connection; a fresh TLS connection upstream per request.

    ``counts`` holds how many times each fault was applied (decided by the plan, even when the
    upstream then failed), ``requests`` the number of whole requests received and
    ``upstream_errors`` how many times the upstream could not be reached or broke (the client
    got a 502 for those)."""

    _name = "faultproxy"

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        server_ssl: ssl.SSLContext,
        upstream_ssl: ssl.SSLContext,
        plan: Plan | None = None,
        delay_s: float = 2.0,
        host: str = "127.0.0.1",
        port: int = 0,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(host, port, timeout)
        self._upstream = (upstream_host, upstream_port)
        self.server_ssl = server_ssl
        self.upstream_ssl = upstream_ssl
        self.plan: Plan = plan or always_pass
        self.delay_s = delay_s
        self.counts: collections.Counter[Fault] = collections.Counter()
        self.requests = 0
        self.upstream_errors = 0

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def upstream(self) -> tuple[str, int]:
        with self._lock:
            return self._upstream

    def set_upstream(self, host: str, port: int) -> None:
        """Point later requests at another server (e.g. one restarted on a new port)."""
        with self._lock:
            self._upstream = (host, port)

    def set_plan(self, plan: Plan | None) -> None:
        self.plan = plan or always_pass

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- one client connection ---------------------------------------------------------------

    def _wrap(self, raw: socket.socket, ctx: ssl.SSLContext, **kwargs: object) -> ssl.SSLSocket:
        """Wrap ``raw`` in TLS and do the handshake, keeping the socket stoppable throughout."""
        tls = ctx.wrap_socket(raw, do_handshake_on_connect=False, **kwargs)  # type: ignore[arg-type]
        self._untrack(raw)  # wrap_socket took over (and detached) the file descriptor
        self._track(tls)
        try:
            tls.do_handshake()
        except BaseException:
            self._release(tls)
            raise
        return tls

    def _handle_connection(self, conn: socket.socket) -> None:
        client: socket.socket = conn
        try:
            client = self._wrap(conn, self.server_ssl, server_side=True)
            self._serve(client)
        except (_ClientGone, OSError) as exc:  # ssl.SSLError and TimeoutError are OSErrors
            log.debug("faultproxy: client connection ended: %r", exc)
        finally:
            self._release(client)
            if client is not conn:
                self._release(conn)

    def _serve(self, client: socket.socket) -> None:
        reader = _Reader(client)
        try:
            method, target, headers, body = self._read_request(reader, client)
        except _BadRequest as exc:
            client.sendall(_simple_response(exc.status, exc.reason, exc.detail))
            return

        with self._lock:
            index = self.requests
            self.requests += 1
        path = target.split("?", 1)[0]
        try:
            fault = self.plan(index, method, path)
        except Exception:
            log.exception("faultproxy: plan failed for request %d %s %s", index, method, path)
            client.sendall(_simple_response(500, "Internal Server Error", "plan failed"))
            return
        with self._lock:
            self.counts[fault] += 1
        log.debug("faultproxy: request %d %s %s -> %s", index, method, path, fault.name)

        if fault is Fault.DROP:
            return  # the caller closes the connection without a word
        if fault is Fault.ERROR_BEFORE:
            client.sendall(_simple_response(503, "Service Unavailable", "injected"))
            return

        try:
            response = self._exchange(self._upstream_request(method, target, headers, body), method)
        except _UpstreamError as exc:
            with self._lock:
                self.upstream_errors += 1
            log.debug("faultproxy: upstream failed for request %d: %s", index, exc)
            client.sendall(_simple_response(502, "Bad Gateway", f"upstream unavailable: {exc}"))
            return

        if fault is Fault.ERROR_AFTER:
            client.sendall(_simple_response(502, "Bad Gateway", "injected"))
            return
        response = force_close(response)
        if fault is Fault.DELAY and self._stopping.wait(self.delay_s):
            return  # stopping: give up on the client
        if fault is Fault.CUT:
            client.sendall(response[: cut_point(response)])
            return  # closed without close_notify, in the middle of the body
        client.sendall(response)

    def _read_request(
        self, reader: _Reader, client: socket.socket
    ) -> tuple[str, str, list[tuple[str, str]], bytes]:
        # Tolerate stray empty lines before the request line (RFC 9112, section 2.2).
        while reader.buf.startswith(b"\r\n"):
            del reader.buf[:2]
        head = reader.read_until(b"\r\n\r\n", MAX_HEAD)
        try:
            request_line, headers = _parse_headers(head[:-4])
        except ValueError as exc:
            raise _BadRequest(400, "Bad Request", str(exc)) from exc
        parts = request_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _BadRequest(400, "Bad Request", f"malformed request line {request_line!r}")
        method, target, _version = parts

        expect = _header(headers, "expect")
        if expect is not None and expect.lower() == "100-continue":
            client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

        if _is_chunked(headers):
            body = reader.read_chunked(MAX_BODY)
        else:
            length_text = _header(headers, "content-length")
            if length_text is None:
                body = b""
            else:
                try:
                    lengths = {int(v.strip()) for v in length_text.split(",")}
                except ValueError:
                    lengths = set()
                if len(lengths) != 1 or min(lengths) < 0:
                    raise _BadRequest(400, "Bad Request", "bad Content-Length")
                length = lengths.pop()
                if length > MAX_BODY:
                    raise _BadRequest(413, "Content Too Large", "body too large")
                body = reader.read_exact(length)
        return method, target, headers, body

    @staticmethod
    def _upstream_request(
        method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> bytes:
        had_body = (
            bool(body) or _is_chunked(headers) or _header(headers, "content-length") is not None
        )
        lines = [f"{method} {target} HTTP/1.1"]
        lines += [f"{k}: {v}" for k, v in headers if k.lower() not in _HOP_BY_HOP]
        if had_body:
            lines.append(f"Content-Length: {len(body)}")
        lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    def _exchange(self, request: bytes, method: str) -> bytes:
        """Send ``request`` over a fresh TLS connection upstream and read the whole response."""
        host, port = self.upstream
        raw: socket.socket | None = None
        up: socket.socket | None = None
        try:
            try:
                raw = socket.create_connection((host, port), timeout=self.timeout)
            except OSError as exc:
                raise _UpstreamError(f"cannot connect to {host}:{port}: {exc}") from exc
            self._track(raw)
            try:
                up = self._wrap(raw, self.upstream_ssl, server_hostname=host)
                up.sendall(request)
            except OSError as exc:
                raise _UpstreamError(f"cannot send to {host}:{port}: {exc!r}") from exc
            return self._read_response(up, method)
        finally:
            self._release(up)
            self._release(raw)

    def _read_response(self, up: socket.socket, method: str) -> bytes:
        data = bytearray()
        try:
            while True:
                try:
                    chunk = up.recv(RECV_SIZE)
                except OSError as exc:
                    # A reset right after a complete response is fine; anything else is not.
                    end = response_end(bytes(data), method)
                    if end is not None:
                        return bytes(data[:end])
                    raise _UpstreamError(f"upstream failed mid-response: {exc!r}") from exc
                if not chunk:
                    end = response_end(bytes(data), method, eof=True)
                    if end is None:
                        raise _UpstreamError(
                            f"upstream closed after {len(data)} bytes of an incomplete response"
                        )
                    return bytes(data[:end])
                data += chunk
                if len(data) > MAX_HEAD + MAX_BODY:
                    raise _UpstreamError("upstream response too large")
                end = response_end(bytes(data), method)
                if end is not None:
                    return bytes(data[:end])
        except ValueError as exc:
            raise _UpstreamError(f"malformed upstream response: {exc}") from exc


class CountingProxy(_ThreadedServer):
    """A plain TCP pass-through (TLS untouched) that counts the bytes in each direction:
    ``bytes_up`` from client to upstream, ``bytes_down`` back."""

    _name = "countingproxy"

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(host, port, timeout)
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.bytes_up = 0
        self.bytes_down = 0

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def bytes_total(self) -> int:
        with self._lock:
            return self.bytes_up + self.bytes_down

    def reset(self) -> None:
        with self._lock:
            self.bytes_up = self.bytes_down = self.connections = 0

    def __enter__(self) -> CountingProxy:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _handle_connection(self, conn: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            try:
                upstream = socket.create_connection(
                    (self.upstream_host, self.upstream_port), timeout=self.timeout
                )
            except OSError as exc:
                log.debug("countingproxy: cannot connect upstream: %r", exc)
                return
            self._track(upstream)
            done = threading.Event()
            if not self._spawn(self._pump, conn, upstream, True, done, kind="pump"):
                return
            self._pump(upstream, conn, False, None)
            done.wait(self.timeout + 1)
        finally:
            self._release(upstream)
            self._release(conn)

    def _pump(
        self, src: socket.socket, dst: socket.socket, up: bool, done: threading.Event | None
    ) -> None:
        try:
            while True:
                data = src.recv(RECV_SIZE)
                if not data:
                    break
                with self._lock:
                    if up:
                        self.bytes_up += len(data)
                    else:
                        self.bytes_down += len(data)
                dst.sendall(data)
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)  # pass the half-close on
        except OSError:
            # Reset, timeout or stop(): abort both directions.
            _shutdown(src)
            _shutdown(dst)
        finally:
            if done is not None:
                done.set()
