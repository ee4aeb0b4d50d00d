"""uvicorn's HTTP/1.1 protocol (h11), answering what the parser itself refuses in the contract's shape.

A request that is not valid HTTP/1.1 never reaches the ASGI app: h11 refuses a
header value with a NUL or another control character (RFC 9110 5.5: never
valid), a Content-Length that is not one number (`abc`, `-1`, two that
differ), a malformed request line, a header block over the parser's limit.
uvicorn then answers `400 Invalid HTTP request received.` in text/plain; this
class answers the same status as `{"error": {"code": "VALIDATION_ERROR",
"message", "details": []}}` in JSON, like every other error of the API. The
status stays 400 (not 415 for a NUL in Content-Type): the request is refused
as malformed HTTP before any of its headers means anything.
"""
from __future__ import annotations

import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

MALFORMED = json.dumps({"error": {
    "code": "VALIDATION_ERROR",
    "message": "the request is not valid HTTP/1.1: a malformed request line or header (a control character "
               "such as NUL in a header value, a Content-Length that is not one non-negative number, ...)",
    "details": []}}).encode()


class ContractH11Protocol(H11Protocol):
    def send_400_response(self, msg: str) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(MALFORMED)).encode()),
                   (b"connection", b"close")]
        # As uvicorn's own answer: written whole, then the connection closes (what followed cannot be framed).
        for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"), h11.Data(data=MALFORMED),
                      h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self.transport.close()
