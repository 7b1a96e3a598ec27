"""The collector's HTTP client: the only place the appliance talks to the network.

Every failure becomes a ``SyncError`` subclass that says whether to retry (``Transient``: the
network, a timeout, a 5xx, a reply cut short), to stop until a person acts (``Unauthorized``:
the token; ``TlsError``: the pinned CA does not match the server), or that the collector refused
what was sent (``Refused``: a 4xx naming the problem).
"""

from __future__ import annotations

import gzip
import json
import platform
import socket
from pathlib import Path
from typing import Any

import requests

from appliance import __version__
from appliance.errors import CheckpointError, Refused, SyncError, TlsError, Transient, Unauthorized

USER_AGENT = f"checkpoint/{__version__} ({platform.system()}; {platform.machine()})"


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds <= 24 * 3600 else None


def _detail(response: requests.Response) -> tuple[str, list[dict[str, Any]]]:
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip().splitlines()
        return (text[0][:200] if text else response.reason or "no reason given"), []
    if isinstance(body, dict):
        errors = body.get("errors")
        return str(body.get("detail", body))[:500], errors if isinstance(errors, list) else []
    return str(body)[:500], []


class CollectorClient:
    """One collector, one token. ``ca_file`` pins the province CA; None uses the system's."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        ca_file: Path | None = None,
        timeout: float = 15.0,
    ) -> None:
        self.url = normalise_url(url)
        self.token = token
        self.ca_file = ca_file
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.verify = str(ca_file) if ca_file is not None else True
        self.session.trust_env = False  # no proxy from the environment: the CA is pinned
        self.bytes_sent = 0

    def close(self) -> None:
        self.session.close()

    def _post(self, path: str, body: dict[str, Any] | None, *, compress: bool = False) -> Any:
        method = "POST" if body is not None else "GET"
        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode() if body else b""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if compress:
            data = gzip.compress(data, compresslevel=6)
            headers["Content-Encoding"] = "gzip"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self.bytes_sent += len(data)
        where = f"{self.url}{path}"
        try:
            response = self.session.request(
                method, where, data=data or None, headers=headers, timeout=self.timeout
            )
        except requests.exceptions.SSLError as exc:
            reason = str(exc)
            if "CERTIFICATE_VERIFY_FAILED" in reason or "certificate verify failed" in reason:
                pinned = f"the pinned CA {self.ca_file}" if self.ca_file else "the system's CAs"
                raise TlsError(
                    f"{self.url}: the server's certificate is not trusted by {pinned}"
                    " (wrong CA, or not the collector)"
                ) from None
            raise Transient(f"{self.url}: TLS failed ({_short(exc)})") from None
        except requests.exceptions.Timeout:
            raise Transient(f"{self.url}: no answer within {self.timeout:g} s") from None
        except requests.exceptions.RequestException as exc:
            raise Transient(f"{self.url}: {_short(exc)}") from None
        except OSError as exc:
            # requests raises a bare OSError when the pinned CA file cannot be read.
            raise TlsError(f"cannot use the pinned CA {self.ca_file}: {_short(exc)}") from None
        status = response.status_code
        if status >= 500 or status == 429 or status == 408:
            message, _ = _detail(response)
            raise Transient(
                f"collector answered {status}: {message}", retry_after=_retry_after(response)
            )
        if status == 401:
            message, _ = _detail(response)
            raise Unauthorized(f"the collector refused the token: {message}")
        if status >= 400:
            message, errors = _detail(response)
            raise Refused(f"collector refused ({status}): {message}", status=status, errors=errors)
        try:
            return response.json()
        except ValueError:
            # A reply cut mid-way, or not the collector: the request may have been applied,
            # which is why every record has a UUID and the retry is harmless.
            raise Transient(f"{self.url}: the reply was cut short or is not JSON") from None

    # -- the protocol ----------------------------------------------------------------------

    def enroll(self, code: str, *, hostname: str | None = None) -> dict[str, Any]:
        reply = self._post(
            "/v1/enroll",
            {"code": code, "hostname": hostname or socket.gethostname(), "software": __version__},
        )
        for field in ("checkpoint_id", "token", "agency", "door"):
            if not isinstance(reply, dict) or not isinstance(reply.get(field), str):
                raise SyncError(f"the collector's enrollment reply has no {field}")
        return dict(reply)

    def create_code(
        self,
        agency: str,
        door: str,
        *,
        checkpoint_id: str | None = None,
        expires_in_s: float | None = None,
    ) -> dict[str, Any]:
        """A one-time enrollment code for one door (``POST /v1/admin/codes``; an admin token)."""
        body: dict[str, Any] = {"agency": agency, "door": door}
        if checkpoint_id is not None:
            body["checkpoint_id"] = checkpoint_id
        if expires_in_s is not None:
            body["expires_in_s"] = expires_in_s
        reply = self._post("/v1/admin/codes", body)
        for field in ("code", "expires_at"):
            if not isinstance(reply, dict) or not isinstance(reply.get(field), str):
                raise SyncError(f"the collector's reply to a code request has no {field}")
        return dict(reply)

    def whoami(self) -> dict[str, Any]:
        """The collector's view of this unit's token (changes nothing on the server)."""
        reply = self._post("/v1/device", None)
        if not isinstance(reply, dict) or not isinstance(reply.get("checkpoint_id"), str):
            raise Transient("the collector's reply is not the protocol's")
        return dict(reply)

    def send_visits(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """The collector's counts, and ``refused``: {uuid: reason} for each record it refused
        as contradicting what it stored (a collector older than that list sends none)."""
        reply = self._post("/v1/visits", {"records": records}, compress=True)
        try:
            result: dict[str, Any] = {k: int(reply[k]) for k in ("received", "new", "duplicates")}
            result["refused"] = {
                str(item["uuid"]): str(item["reason"]) for item in reply.get("refused", [])
            }
        except (KeyError, TypeError, ValueError, AttributeError):
            raise Transient("the collector's reply to a batch is not the protocol's") from None
        if result["received"] != len(records):
            raise Transient(
                f"the collector acknowledged {result['received']} records of {len(records)}"
            )
        return result

    def heartbeat(
        self, health: dict[str, Any], acked: list[str], hostname: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"health": health, "acked_alerts": acked}
        if hostname:
            body["hostname"] = hostname
        reply = self._post("/v1/heartbeat", body)
        if not isinstance(reply, dict) or not isinstance(reply.get("alerts"), list):
            raise Transient("the collector's heartbeat reply is not what the protocol says")
        return reply


def _short(exc: BaseException) -> str:
    text = str(exc)
    markers = (
        "Connection refused", "Name or service not known", "Network is unreachable",
        "Connection reset", "Remote end closed", "timed out", "EOF occurred",
    )  # fmt: skip
    for marker in markers:
        if marker in text:
            return marker.lower()
    return text.splitlines()[0][:160] if text else type(exc).__name__


def normalise_url(url: str) -> str:
    text = url.strip().rstrip("/")
    if not text.startswith("https://"):
        if text.startswith("http://"):
            raise CheckpointError(
                f"{url}: the collector must be reached over HTTPS (records leave the device)"
            )
        raise CheckpointError(f"{url}: not a collector URL (https://host:port)")
    if len(text) <= len("https://"):
        raise CheckpointError(f"{url}: no host in the collector URL")
    return text
