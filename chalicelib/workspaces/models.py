"""The workspace file API's models (routes.py): a file written, read, listed."""
from __future__ import annotations

from typing import Optional

from pydantic import Field

from chalicelib.core.models import ApiModel, ResponseModel

__all__ = ["FileContent", "FileEntry", "FileQuery", "Files", "FilesAnswer", "FileWritten", "PathQuery"]


class FileQuery(ApiModel):
    path: Optional[str] = Field(default=None, min_length=1, max_length=1024)


class FileEntry(ResponseModel):
    path: str
    size: int
    sha256: str


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
