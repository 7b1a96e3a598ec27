"""The OpenAPI document is the sync protocol's specification, so it must say what the running
collector does (issue 15, defect 17): one error shape for every refusal, every status a route
can answer, the report's CSV, the one Content-Encoding values accepted, and the limits the
server enforces. And the admin commands refuse nonsensical numbers with one line, exit 2."""

# ruff: noqa: F811  (pytest fixtures imported from the harness are parameters of the tests)
from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.collector_harness import Collector, collector, database_url, postgres_server, tls  # noqa: F401

ERROR_REF = {"$ref": "#/components/schemas/ErrorReply"}


def call(c: Collector, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
    headers = dict(kw.pop("headers", {}))
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(
        method, c.url + path, headers=headers, verify=str(c.tls.ca_file), timeout=20, **kw
    )


def spec_of(c: Collector) -> dict[str, Any]:
    reply = call(c, "GET", "/openapi.json")
    assert reply.status_code == 200
    return dict(reply.json())


def test_every_refusal_has_the_documented_shape_and_status(collector: Collector) -> None:
    spec = spec_of(collector)
    device = collector.enroll()["token"]
    official = collector.role_token("official")
    used = collector.code()
    collector.enroll(used)
    batch = gzip.compress(json.dumps({"records": []}).encode())
    gz = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    refusals: list[tuple[str, str, str | None, dict[str, Any], int]] = [
        ("POST", "/v1/visits", None, {"data": batch, "headers": gz}, 401),
        ("POST", "/v1/visits", "cpd_unknown", {"data": batch, "headers": gz}, 401),
        ("GET", "/v1/device", "cpd_unknown", {}, 401),
        ("POST", "/v1/visits", device, {"data": b"not gzip", "headers": gz}, 400),
        ("POST", "/v1/visits", device, {"data": batch, "headers": {**gz, "Content-Encoding": "br"}},
         415),
        ("POST", "/v1/visits", device, {"json": {"records": [{"uuid": "x"}]}}, 422),
        ("POST", "/v1/visits", device,
         {"data": gzip.compress(bytes(40 * 1024 * 1024)), "headers": gz}, 413),
        ("POST", "/v1/heartbeat", device, {"json": {"health": {"x": "y" * 70_000}}}, 413),
        ("POST", "/v1/enroll", None, {"json": {"code": used}}, 410),
        ("POST", "/v1/enroll", None, {"json": {"code": "AAAA-BBBB-CCCC-DDDD"}}, 403),
        ("POST", "/v1/admin/codes", official, {"json": {"agency": "A", "door": "B"}}, 403),
        ("GET", "/v1/reports/adoption", device, {"params": {"from": "2025-01-01",
                                                            "to": "2025-01-02"}}, 403),
        ("GET", "/v1/reports/adoption", official, {"params": {"from": "2025-01-02",
                                                              "to": "2025-01-01"}}, 422),
        ("GET", "/v1/exports/entries", official, {"params": {"from": "2000-01-01",
                                                             "to": "2025-01-01"}}, 422),
    ]  # fmt: skip
    for method, path, token, kwargs, status in refusals:
        reply = call(collector, method, path, token, **kwargs)
        assert reply.status_code == status, (method, path, status, reply.text)
        assert reply.headers["content-type"] == "application/json"
        body = reply.json()
        assert set(body) == {"detail", "errors"}, (path, body)
        assert isinstance(body["detail"], str) and "\n" not in body["detail"]
        assert all(set(e) == {"field", "message"} for e in body["errors"]), body
        documented = spec["paths"][path][method.lower()]["responses"]
        assert str(status) in documented, (path, status, sorted(documented))
        content = documented[str(status)]["content"]["application/json"]["schema"]
        assert content == ERROR_REF, (path, status, content)
    # Not a route, or not its method: the same shape.
    for reply in (call(collector, "GET", "/v2/nothing"), call(collector, "DELETE", "/v1/visits")):
        assert set(reply.json()) == {"detail", "errors"}, reply.text


def test_the_document_states_statuses_media_types_and_limits(collector: Collector) -> None:
    spec = spec_of(collector)
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas  # FastAPI's own 422 shape is not what is sent
    operations = {
        (path, method): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    }
    for (path, method), operation in operations.items():
        responses = operation["responses"]
        assert (
            responses.get("503", {}).get("content", {}).get("application/json", {}).get("schema")
            == ERROR_REF
        ), path
        if operation.get("security"):
            assert "401" in responses, path
        if method == "post":
            assert {"400", "413", "415", "422"} <= responses.keys(), path
            [encoding] = [p for p in operation["parameters"] if p["name"] == "Content-Encoding"]
            assert encoding["schema"]["enum"] == ["gzip", "identity"], path
    for path in ("/v1/admin/codes", "/v1/exposure/check", "/v1/reports/adoption",
                 "/v1/exports/entries"):  # fmt: skip
        assert "403" in next(op for (p, _), op in operations.items() if p == path)["responses"]
    assert {"403", "409", "410"} <= operations["/v1/enroll", "post"]["responses"].keys()

    adoption = operations["/v1/reports/adoption", "get"]["responses"]["200"]["content"]
    assert {"application/json", "text/csv"} <= adoption.keys()
    export = operations["/v1/exports/entries", "get"]["responses"]["200"]["content"]
    assert export.keys() == {"text/csv", "application/x-ndjson"}
    to = next(p for p in operations["/v1/reports/adoption", "get"]["parameters"]
              if p["name"] == "to")  # fmt: skip
    assert "ten years" in to["description"]

    nul = "\x00"
    for model, field in (("EnrollRequest", "hostname"), ("HeartbeatRequest", "hostname"),
                         ("EnrollRequest", "software"), ("CodeRequest", "agency")):  # fmt: skip
        prop = schemas[model]["properties"][field]
        patterns = [prop.get("pattern")] + [o.get("pattern") for o in prop.get("anyOf", [])]
        pattern = next(p for p in patterns if p)
        assert not re.search(pattern, f"host{nul}name") and re.search(pattern, "pi-door-1"), model
    gaen, bluezone = schemas["GaenCase"]["properties"], schemas["BluezoneCase"]["properties"]
    assert gaen["interval"]["maximum"] * 600 < 4102444800 <= (gaen["interval"]["maximum"] + 1) * 600
    assert "pattern" in bluezone["first_day"] and bluezone["key"]["pattern"].endswith("{64}$")


@pytest.mark.parametrize("path", ["/v1/visits", "/v1/heartbeat", "/v1/enroll"])
def test_a_content_encoding_outside_the_enum_is_refused(collector: Collector, path: str) -> None:
    device = collector.enroll()["token"]
    body = json.dumps({"records": []} if path == "/v1/visits" else {"code": "AAAA"}).encode()
    if path == "/v1/heartbeat":
        body = b"{}"

    def post(encoding: str, data: bytes) -> Any:
        headers = {"Content-Encoding": encoding, "Content-Type": "application/json"}
        return call(collector, "POST", path, device, data=data, headers=headers)

    for encoding in ("GZIP", "Gzip", "", "gzip, identity", "deflate", "x-gzip"):
        reply = post(encoding, gzip.compress(body) if "gzip" in encoding.lower() else body)
        assert reply.status_code == 415, (path, encoding, reply.text)
        assert "Content-Encoding" in reply.json()["detail"]
    for encoding, data in (("gzip", gzip.compress(body)), ("identity", body)):
        reply = post(encoding, data)
        assert reply.status_code != 415, (path, encoding, reply.text)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector", *args], capture_output=True, text=True, timeout=60
    )


def test_admin_commands_refuse_nonsensical_numbers_in_one_line(tmp_path: Path) -> None:
    db = ["--database", str(tmp_path / "c.db")]
    code = ["codes", "create", *db, "--agency", "A", "--door", "B"]
    for args, needle in (
        (["tokens", "create", *db, "--role", "official", "--days", "-5"], "--days"),
        (["tokens", "create", *db, "--role", "official", "--days", "0"], "--days"),
        (["tokens", "create", *db, "--role", "official", "--days", "99999"], "--days"),
        (["tokens", "create", *db, "--role", "official", "--days", "lots"], "--days"),
        (["serve", *db, "--port", "0"], "--port"),
        (["serve", *db, "--port", "70000"], "--port"),
        ([*code, "--expires", "400d"], "--expires"),
        ([*code, "--token-days", "-1"], "--token-days"),
        (["report", *db, "--from", "2025-01-02", "--to", "2025-01-01"], "before"),
        (["export", *db, "--from", "2000-01-01", "--to", "2025-01-01"], "ten years"),
    ):
        result = cli(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("checkpoint-collector"), result.stderr
        assert needle in lines[0] and "Traceback" not in result.stderr, lines
    assert not (tmp_path / "c.db").exists()  # refused before anything was opened
    made = cli("tokens", "create", *db, "--role", "official", "--days", "30")
    assert made.returncode == 0 and made.stdout.startswith("cpr_"), made.stderr


def test_a_refusal_quoting_a_field_name_with_a_nul_is_a_422(collector: Collector) -> None:
    """The refusal quotes an unknown field's name, and a reply may hold no NUL: a name with one
    was a 500 (found by the fuzzer). The name is shown with the NUL escaped."""
    body = b'{"code": "AAAA-BBBB-CCCC-DDDD", "hostname": "h", "a\\u0000b": 1}'
    reply = call(collector, "POST", "/v1/enroll", data=body,
                 headers={"Content-Type": "application/json"})  # fmt: skip
    assert reply.status_code == 422, reply.text
    refusal = reply.json()
    assert set(refusal) == {"detail", "errors"}
    assert any("a\\x00b" in error["field"] for error in refusal["errors"]), refusal
