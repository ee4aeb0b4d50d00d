"""The workspace file API (API.md "Patches"): PUT a file (raw text body), GET one, list them."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.core.api import Call, endpoint
from chalicelib.core.auth import Scope
from chalicelib.core.lazy import domain_of

if TYPE_CHECKING:
    from chalicelib.workspaces import models, service
else:  # imported on first use, not when app.py registers the routes (core/lazy.py)
    models, service = domain_of(__name__)

bp = Blueprint(__name__)
TAG = "Patches"
RAW = ("text/plain", "application/octet-stream")


@endpoint(bp, "/api/workspaces/{workspace}/files", "PUT", scope=Scope.OPERATOR, query="FileQuery",
          response="FileWritten", tag=TAG, content_types=RAW, errors=(415, 503),
          summary="Write one file of a workspace (raw body; committed atomically with a conditional manifest write)")
def put_file(call: Call) -> models.FileWritten:
    return service.put_file(call.ctx, call.params["workspace"], call.query.path, call.raw_body)


@endpoint(bp, "/api/workspaces/{workspace}/files", "GET", scope=Scope.AGENT, query="FileQuery",
          response="FilesAnswer", tag=TAG, errors=(404,),
          summary="With ?path=: one file ({path, sha256, size, content}); without: the list of files")
def get_files(call: Call) -> models.Files | models.FileContent:
    ctx, workspace = call.ctx, call.params["workspace"]
    if call.query.path is None:
        return service.list_files(ctx, workspace)
    return service.get_file(ctx, workspace, call.query.path)
