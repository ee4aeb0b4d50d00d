"""The one place that talks to S3: objects, and writes conditional on what is there.

`put(..., if_match=etag)` writes only if the object still has that ETag and
`put(..., if_none_match=True)` only if it does not exist: both raise
PreconditionFailed otherwise (S3 412, and the 409 ConditionalRequestConflict
real S3 may answer under concurrent writes, which means the same: re-read).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.aws import clients


class PreconditionFailed(Exception):
    """The object changed (If-Match) or exists (If-None-Match) since it was read."""


@dataclass(frozen=True)
class Blob:
    data: bytes
    etag: str


def _s3() -> Any:
    return clients.client("s3")


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def get(bucket: str, key: str) -> Blob | None:
    try:
        response = _s3().get_object(Bucket=bucket, Key=key)
    except ClientError as e:
        if _code(e) in ("NoSuchKey", "404", "NotFound"):
            return None
        raise
    return Blob(response["Body"].read(), response["ETag"])


@dataclass(frozen=True)
class Version:
    """An object of a versioned bucket as read or written: its version id is None when versioning is off."""
    data: bytes
    etag: str
    version_id: str | None


def get_latest(bucket: str, key: str) -> Version | None:
    """The object's current version, with its version id (a versioned bucket), or None when there is none."""
    try:
        response = _s3().get_object(Bucket=bucket, Key=key)
    except ClientError as e:
        if _code(e) in ("NoSuchKey", "404", "NotFound"):
            return None
        raise
    version = response.get("VersionId")
    return Version(response["Body"].read(), response["ETag"], version if version and version != "null" else None)


def put(bucket: str, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False,
        content_type: str = "application/octet-stream") -> str:
    """Write `data`; returns the new ETag. Raises PreconditionFailed when a condition does not hold."""
    etag: str = _put(bucket, key, data, if_match, if_none_match, content_type)["ETag"]
    return etag


def put_version(bucket: str, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False,
                content_type: str = "application/octet-stream") -> Version:
    """`put`, answering the version written (its version id: None when the bucket is not versioned)."""
    response = _put(bucket, key, data, if_match, if_none_match, content_type)
    version = response.get("VersionId")
    return Version(data, response["ETag"], version if version and version != "null" else None)


def _put(bucket: str, key: str, data: bytes, if_match: str | None, if_none_match: bool,
         content_type: str) -> dict[str, Any]:
    args = {"Bucket": bucket, "Key": key, "Body": data, "ContentType": content_type}
    if if_match is not None:
        args["IfMatch"] = if_match
    if if_none_match:
        args["IfNoneMatch"] = "*"
    try:
        response: dict[str, Any] = _s3().put_object(**args)
        return response
    except ClientError as e:
        code = _code(e)
        if code in ("PreconditionFailed", "ConditionalRequestConflict") or _status(e) in (409, 412):
            raise PreconditionFailed(f"{key}: {code}") from None
        if if_match is not None and code in ("NoSuchKey", "404"):
            raise PreconditionFailed(f"{key}: gone") from None
        raise


def exists(bucket: str, key: str) -> bool:
    try:
        _s3().head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as e:
        if _code(e) in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def delete(bucket: str, key: str) -> None:
    _s3().delete_object(Bucket=bucket, Key=key)


@dataclass(frozen=True)
class Listed:
    key: str
    last_modified: float  # epoch seconds


def list_page(bucket: str, prefix: str, start_after: str | None = None, limit: int = 1000,
              delimiter: str | None = None) -> tuple[list[Listed], list[str], bool]:
    """One ListObjectsV2 page: (objects, common prefixes, more to come), keys after `start_after`."""
    args: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": limit}
    if start_after:
        args["StartAfter"] = start_after
    if delimiter:
        args["Delimiter"] = delimiter
    response = _s3().list_objects_v2(**args)
    objects = [Listed(o["Key"], o["LastModified"].timestamp()) for o in response.get("Contents", [])]
    prefixes = [p["Prefix"] for p in response.get("CommonPrefixes", [])]
    return objects, prefixes, bool(response.get("IsTruncated"))


def last_modified(bucket: str, key: str) -> float | None:
    """The object's LastModified (epoch seconds), None when it is gone."""
    try:
        return float(_s3().head_object(Bucket=bucket, Key=key)["LastModified"].timestamp())
    except ClientError as e:
        if _code(e) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
