"""Issue 18, finding 8 on the real local stack: what the HTTP layer itself answers.

Bodies over the limit get a 413 in the error shape that real clients (http.client,
requests) receive, however much they send, without the stack holding the body; a
request the HTTP parser refuses (a NUL in Content-Type, a Content-Length of `abc`)
gets the error shape too, not uvicorn's plain text. One stack for the session
(tests/e2e/conftest.py).
"""
from __future__ import annotations

import http.client
import json
import urllib.parse
from pathlib import Path

import pytest

from tests.e2e.client import call
from tests.support.raw_http import exchange

pytestmark = pytest.mark.e2e

MB = 1024 * 1024


def address(devstack) -> tuple[str, int]:
    host, port = urllib.parse.urlsplit(devstack.url).netloc.rsplit(":", 1)
    return host, int(port)


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.mark.parametrize("megabytes", [10, 50])
def test_a_large_body_gets_a_413_that_http_client_receives(devstack, megabytes):
    """http.client sends the whole body before it reads: a server that answers and closes with
    the body unread resets the connection under it (ConnectionResetError, no answer)."""
    host, port = address(devstack)
    assert call(devstack.url, "GET", "/health").status == 200  # warm: the first request's imports are not the body
    before = peak_rss_bytes(devstack.process.pid)
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        conn.request("POST", "/keys", body=b"x" * (megabytes * MB), headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {devstack.admin_api_key}"})
        reply = conn.getresponse()
        body = json.loads(reply.read())
    finally:
        conn.close()
    assert reply.status == 413 and body["error"]["code"] == "PAYLOAD_TOO_LARGE", body
    assert reply.getheader("Connection") == "close"
    # never read into memory: the stack's peak resident size grew by far less than the body
    assert peak_rss_bytes(devstack.process.pid) - before < 8 * MB
    assert call(devstack.url, "GET", "/health").status == 200


@pytest.mark.parametrize("megabytes", [10, 50])
def test_a_large_body_gets_a_413_that_requests_receives_with_or_without_content_length(devstack, megabytes):
    import requests

    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {devstack.admin_api_key}"}
    sized = requests.post(devstack.url + "/keys", data=b"x" * (megabytes * MB), headers=headers, timeout=60)
    assert sized.status_code == 413 and sized.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"

    def pieces():  # a generator: requests sends it chunked, with no Content-Length
        piece = b"x" * (256 * 1024)
        for _ in range(megabytes * 4):
            yield piece

    chunked = requests.post(devstack.url + "/keys", data=pieces(), headers=headers, timeout=60)
    assert chunked.status_code == 413 and chunked.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_a_413_is_written_at_once_even_while_the_body_is_still_coming(devstack):
    """The answer does not wait for the drain: a client that sent a few bytes of a 50 MB
    Content-Length reads the whole 413 at once (and its close ends the drain)."""
    host, port = address(devstack)
    reply = exchange(host, port, b"POST /keys HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: 52428800\r\n\r\n{\"name\": ", timeout=5)
    assert reply.status == 413 and reply.json["error"]["code"] == "PAYLOAD_TOO_LARGE"


@pytest.mark.parametrize("content_type", [b"application/json\x00", b"application/\x00json", b"\x00"])
def test_a_nul_in_content_type_is_a_400_in_the_error_shape(devstack, content_type):
    host, port = address(devstack)
    body = b'{"name": "k", "scope": "operator"}'
    reply = exchange(host, port, b"POST /keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                     + devstack.admin_api_key.encode() + b"\r\nContent-Type: " + content_type
                     + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body, timeout=5)
    assert reply.status == 400, reply
    assert reply.headers["content-type"] == "application/json"
    assert reply.json["error"]["code"] == "VALIDATION_ERROR" and reply.json["error"]["message"], reply.body
    assert reply.closed


@pytest.mark.parametrize("request_bytes", [
    b"POST /keys HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}",
    b"POST /keys HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n{}",
    b"POST /keys HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    b"GET /health HTTP/1.1\r\nHost: x\r\nX-Bad\x01: y\r\n\r\n",
    b"GARBAGE\r\n\r\n",
], ids=["length-abc", "length-minus-one", "two-lengths", "control-in-name", "no-request-line"])
def test_requests_the_http_parser_refuses_answer_in_the_error_shape(devstack, request_bytes):
    host, port = address(devstack)
    reply = exchange(host, port, request_bytes, timeout=5)
    assert reply.status == 400 and reply.json["error"]["code"] == "VALIDATION_ERROR", reply
    assert reply.closed
