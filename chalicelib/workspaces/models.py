"""The workspace file API's models (routes.py): a file written, read, listed."""
from __future__ import annotations

from typing import Optional

from chalicelib.core.models import ApiModel, ResponseModel
from chalicelib.patches.models import FileEntry, FileQuery

__all__ = ["FileContent", "FileQuery", "Files", "FilesAnswer", "FileWritten", "PathQuery"]


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
