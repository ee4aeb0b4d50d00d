"""The workspace file API (API.md "Patches"): PUT a file (raw text body), GET one, list them."""
from __future__ import annotations

from typing import Optional

from chalice import Blueprint

from chalicelib.core.api import Call, endpoint
from chalicelib.core.auth import Scope
from chalicelib.core.context import Ctx
from chalicelib.core.models import ApiModel, ResponseModel
from chalicelib.patches.models import FileEntry, FileQuery
from chalicelib.workspaces import service

bp = Blueprint(__name__)
TAG = "Patches"
RAW = ("text/plain", "application/octet-stream")


class FileWritten(ResponseModel):
    workspace: str
    path: str
    sha256: str
    size: int


class FileContent(FileWritten):
    content: str


class Files(ResponseModel):
    workspace: str
    items: list[FileEntry]


class FilesAnswer(ResponseModel):
    """GET .../files: with ?path= one file (path, sha256, size, content), without it the list
    (items); documented as one shape."""

    workspace: str
    path: Optional[str] = None
    sha256: Optional[str] = None
    size: Optional[int] = None
    content: Optional[str] = None
    items: Optional[list[FileEntry]] = None


class PathQuery(ApiModel):
    path: Optional[str] = None


def _ctx(call: Call) -> Ctx:
    return Ctx(principal=call.principal, trace_id=call.trace_id)


@endpoint(bp, "/api/workspaces/{workspace}/files", "PUT", scope=Scope.OPERATOR, query=FileQuery,
          response=FileWritten, tag=TAG, content_types=RAW, errors=(415, 503),
          summary="Write one file of a workspace (raw body; committed atomically with a conditional manifest write)")
def put_file(call: Call) -> FileWritten:
    return FileWritten.model_validate(
        service.put_file(_ctx(call), call.params["workspace"], call.query.path, call.raw_body))


@endpoint(bp, "/api/workspaces/{workspace}/files", "GET", scope=Scope.AGENT, query=FileQuery,
          response=FilesAnswer, tag=TAG, errors=(404,),
          summary="With ?path=: one file ({path, sha256, size, content}); without: the list of files")
def get_files(call: Call):
    ctx, workspace = _ctx(call), call.params["workspace"]
    if call.query.path is None:
        return Files.model_validate(service.list_files(ctx, workspace))
    return FileContent.model_validate(service.get_file(ctx, workspace, call.query.path))
