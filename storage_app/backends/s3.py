"""The S3 backend (AWS, R2, MinIO, ...) over django-storages' `S3Storage` and its boto3 client.

Writes are managed uploads (multipart above 8 MiB, atomic on completion); copies are server-side;
download URLs are presigned (`presign.QueryPresigner`) unless the bytes are app-encrypted; upload
URLs are presigned PUTs and POST forms unless bytes must pass through the app to be encrypted.
"""
from __future__ import annotations

import logging
import math
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import BinaryIO

from django.conf import settings
from django.core.files.storage import Storage

from config.errors import Conflict, NotFound, StorageUnavailable
from storage_app.backends.base import (
    MediaStore, ObjectInfo, ObjectStat, SignedMultipart, SignedUpload, content_disposition,
)
from storage_app.backends.presign import QueryPresigner
from storage_app.backends.streams import READ_BLOCK
from storage_app.keys import validate_key

logger = logging.getLogger("mediastore.storage")

PART_SIZE = 8 * 1024 * 1024  # parts of a resumable write; at most one is held in memory
MIN_PART = 5 * 1024 * 1024  # S3's least size of any part but the last
MAX_PARTS = 10000
# The bucket CORS rule `allow_browser_uploads` owns (the bucket's other rules are left alone).
CORS_RULE_ID = "mediastore-direct-uploads"
MULTIPART_REFUSALS = ("InvalidPart", "InvalidPartOrder", "EntityTooSmall", "NoSuchUpload", "MalformedXML")
TAIL_PREFIX = "_uploads/"  # the bytes of a resumable write that do not yet fill a part


class S3Store(MediaStore):
    name = "s3"

    def __init__(self, storage: Storage, **kwargs) -> None:
        super().__init__(storage, **kwargs)
        from boto3.s3.transfer import TransferConfig

        # Bounds the memory one upload holds: parts of 8 MiB, at most 2 read ahead of the
        # 4 sending threads (s3transfer's default of 10 would hold 80 MiB per upload).
        self.transfer = TransferConfig(multipart_threshold=8 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024,
                                       max_concurrency=4, use_threads=True)
        self.transfer.max_in_memory_upload_chunks = 2
        self._local = threading.local()

    @property
    def bucket(self) -> str:
        return self.storage.bucket_name

    @property
    def bucket_name(self) -> str:
        return self.bucket

    @property
    def client(self):  # noqa: ANN201 - boto3 client
        # S3Storage keeps one boto3 resource per thread; its client is reused for every call.
        return self.storage.connection.meta.client

    @property
    def presign_client(self):  # noqa: ANN201 - boto3 client
        """Signs URLs for the host clients reach (MEDIA_S3_PRESIGN_ENDPOINT), which may differ
        from the one this server talks to (e.g. `http://minio:9000` inside Compose).
        Signing is local: this client never opens a connection."""
        endpoint = settings.MEDIA_S3_PRESIGN_ENDPOINT
        if not endpoint or endpoint == self.storage.endpoint_url:
            return self.client
        cached = getattr(self, "_presign_client", None)
        if cached is None or cached[0] != endpoint:
            import boto3

            client = boto3.session.Session().client(
                "s3", endpoint_url=endpoint, region_name=self.storage.region_name,
                aws_access_key_id=self.storage.access_key or None,
                aws_secret_access_key=self.storage.secret_key or None, config=self.storage.client_config)
            cached = self._presign_client = (endpoint, client)
        return cached[1]

    def _errors(self, exc: Exception, key: str) -> Exception:
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                return NotFound("The object does not exist.")
            logger.error("S3 error on %s: %s", key, code)
            return StorageUnavailable(f"The storage backend answered {code or 'an error'}.")
        if isinstance(exc, BotoCoreError):
            logger.error("S3 unreachable on %s: %s", key, exc)
            return StorageUnavailable("The storage backend is unreachable.")
        return exc

    def _call(self, key: str, fn: Callable, *args, **kwargs):  # noqa: ANN202
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            mapped = self._errors(exc, key)
            if mapped is exc:
                raise
            raise mapped from exc

    def _write(self, key: str, stream: BinaryIO, *, content_type: str) -> None:
        extra = {"ContentType": content_type, **self._sse()}
        self._call(key, self.client.upload_fileobj, stream, self.bucket, key, ExtraArgs=extra, Config=self.transfer)

    def _sse(self) -> dict:
        return {"ServerSideEncryption": "AES256"} if self.encryption == "sse" else {}

    # A resumable write is one S3 multipart upload at the object's own key: parts of PART_SIZE as
    # they fill, and what is left at the end of a request (under MIN_PART) in a small tail object
    # read back by the next request; completion lists the parts, so a part a failed request sent
    # beyond the state is simply not part of the object.
    def _append_open(self, key: str, *, content_type: str) -> dict:
        created = self._call(key, self.client.create_multipart_upload, Bucket=self.bucket, Key=key,
                             ContentType=content_type, **self._sse())
        return {"upload_id": created["UploadId"], "parts": [], "tail": f"{TAIL_PREFIX}{uuid.uuid4().hex}",
                "tail_size": 0}

    def _append(self, key: str, state: dict, chunks: Iterator[bytes | memoryview]) -> dict:
        state = {**state, "parts": list(state["parts"])}
        buffer = bytearray(self._read_tail(state))
        for chunk in chunks:
            buffer += chunk
            if len(buffer) >= PART_SIZE:
                self._upload_part(key, state, bytes(buffer[:PART_SIZE]))
                del buffer[:PART_SIZE]
        if len(buffer) >= MIN_PART:
            self._upload_part(key, state, bytes(buffer))
            buffer = bytearray()
        if buffer:
            self._call(key, self.client.put_object, Bucket=self.bucket, Key=state["tail"], Body=bytes(buffer),
                       **self._sse())
        state["tail_size"] = len(buffer)
        return state

    def _read_tail(self, state: dict) -> bytes:
        if not state["tail_size"]:
            return b""
        body = self._call(state["tail"], self.client.get_object, Bucket=self.bucket, Key=state["tail"])["Body"]
        data = body.read()
        if len(data) != state["tail_size"]:
            raise StorageUnavailable("The stored tail of a resumable upload has the wrong size.")
        return data

    def _upload_part(self, key: str, state: dict, data: bytes) -> None:
        number = len(state["parts"]) + 1
        answer = self._call(key, self.client.upload_part, Bucket=self.bucket, Key=key, UploadId=state["upload_id"],
                            PartNumber=number, Body=data)
        state["parts"].append([number, answer["ETag"]])

    def _append_finish(self, key: str, state: dict, last: bytes) -> None:
        state = {**state, "parts": list(state["parts"])}
        rest = self._read_tail(state) + last
        if rest or not state["parts"]:
            self._upload_part(key, state, rest)
        self.complete_multipart(key, upload_id=state["upload_id"], parts=[tuple(p) for p in state["parts"]])
        if state["tail_size"]:
            self.delete(state["tail"])

    def _append_abort(self, key: str, state: dict) -> None:
        self.abort_multipart(key, upload_id=state["upload_id"])
        self.delete(state["tail"])

    def signed_multipart_upload(self, key: str, *, content_type: str, size: int, ttl: float) -> SignedMultipart:
        if self.encryption == "app":  # bytes must pass through the app to be encrypted
            return super().signed_multipart_upload(key, content_type=content_type, size=size, ttl=ttl)
        validate_key(key)
        part_size = max(PART_SIZE, math.ceil(size / MAX_PARTS))
        created = self._call(key, self.client.create_multipart_upload, Bucket=self.bucket, Key=key,
                             ContentType=content_type, **self._sse())
        upload_id = created["UploadId"]
        urls = [self.presign_client.generate_presigned_url(
                    "upload_part", ExpiresIn=int(ttl),
                    Params={"Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": number})
                for number in range(1, max(1, math.ceil(size / part_size)) + 1)]
        return SignedMultipart(upload_id=upload_id, part_size=part_size, part_urls=urls,
                               expires_at=datetime.now(timezone.utc) + timedelta(seconds=int(ttl)))

    def complete_multipart(self, key: str, *, upload_id: str, parts: list[tuple[int, str]]) -> None:
        from botocore.exceptions import ClientError

        listing = {"Parts": [{"PartNumber": int(number), "ETag": etag} for number, etag in sorted(parts)]}
        try:
            self.client.complete_multipart_upload(Bucket=self.bucket, Key=validate_key(key), UploadId=upload_id,
                                                  MultipartUpload=listing)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in MULTIPART_REFUSALS:  # the client's parts, not the storage, are at fault
                raise Conflict(f"S3 refused the parts: {code}.", code="multipart_incomplete") from exc
            raise self._errors(exc, key) from exc

    def abort_multipart(self, key: str, *, upload_id: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=validate_key(key), UploadId=upload_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":  # aborted before: fine
                raise self._errors(exc, key) from exc

    def _read(self, key: str, start: int, end: int | None) -> Iterator[bytes]:
        kwargs = {"Bucket": self.bucket, "Key": key}
        if start or end is not None:
            kwargs["Range"] = f"bytes={start}-{'' if end is None else end}"
        body = self._call(key, self.client.get_object, **kwargs)["Body"]
        return _body_chunks(self, key, body)

    def stat(self, key: str) -> ObjectStat:
        head = self._call(key, self.client.head_object, Bucket=self.bucket, Key=validate_key(key))
        return ObjectStat(size=head["ContentLength"], etag=head.get("ETag", "").strip('"'),
                          modified=head.get("LastModified"))

    def delete(self, key: str) -> None:
        self._call(key, self.client.delete_object, Bucket=self.bucket, Key=validate_key(key))

    def copy(self, source: str, destination: str) -> None:
        validate_key(source)
        validate_key(destination)
        # Managed copy: server-side, multipart above 8 MB, never through this process.
        extra = {"ServerSideEncryption": "AES256"} if self.encryption == "sse" else None
        self._call(source, self.client.copy, {"Bucket": self.bucket, "Key": source}, self.bucket, destination,
                   ExtraArgs=extra, Config=self.transfer)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = self._call(prefix, lambda: iter(paginator.paginate(Bucket=self.bucket, Prefix=prefix)))
        while True:
            page = self._call(prefix, next, pages, None)
            if page is None:
                return
            for item in page.get("Contents", []):
                yield ObjectInfo(item["Key"], item["Size"], item.get("LastModified"))

    def sweep_partial(self, *, prefix: str, older_than: datetime, dry_run: bool = False,
                      keep: frozenset[str] = frozenset()) -> list[str]:
        """Abort multipart uploads under `prefix` begun before `older_than`: their parts are
        stored (and billed) until aborted, yet no listing of objects shows them. Those in `keep`
        (the upload ids of resumable and direct uploads still under way) stay."""
        return self._call(prefix, self._sweep_uploads, prefix, older_than, dry_run, keep)

    def _sweep_uploads(self, prefix: str, older_than: datetime, dry_run: bool, keep: frozenset[str]) -> list[str]:
        found = []
        for page in self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                if upload["Initiated"] >= older_than or upload["UploadId"] in keep:
                    continue
                if not dry_run:
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"],
                                                       UploadId=upload["UploadId"])
                found.append(f"{upload['Key']} (multipart upload {upload['UploadId']})")
        return found

    def serves_presigned_downloads(self, *, encrypted: bool) -> bool:
        return not encrypted

    def signed_download_url(self, key: str, ttl: float, *, encrypted: bool = False,
                            filename: str = "", content_type: str = "") -> str:
        if encrypted:  # a presigned S3 URL would hand out ciphertext
            return super().signed_download_url(key, ttl, filename=filename, content_type=content_type)
        validate_key(key)
        response: dict[str, str] = {}
        if content_type:
            # The bucket serves what the URL says: active content (SVG, HTML) only as a download.
            response = {"response-content-type": content_type,
                        "response-content-disposition": content_disposition(content_type, filename)}
        presigner = self._presigner()
        if presigner is not None:
            return presigner.url(key, int(ttl), response)
        params = {"Bucket": self.bucket, "Key": key}
        if content_type:
            params["ResponseContentType"] = response["response-content-type"]
            params["ResponseContentDisposition"] = response["response-content-disposition"]
        return self.presign_client.generate_presigned_url("get_object", Params=params, ExpiresIn=int(ttl))

    def _presigner(self) -> QueryPresigner | None:
        """One per signing endpoint, made on first use; None where boto3 must sign itself."""
        client = self.presign_client
        cached = getattr(self, "_presigner_cache", None)
        if cached is None or cached[0] is not client:
            try:
                presigner = QueryPresigner(client, self.bucket)
            except (ValueError, KeyError, AttributeError):
                logger.info("presigning through boto3: the endpoint's URLs are not plain SigV4 query URLs")
                presigner = None
            cached = self._presigner_cache = (client, presigner)
        return cached[1]

    def signed_upload(self, key: str, *, content_type: str, max_bytes: int, ttl: float) -> SignedUpload:
        if self.encryption == "app":  # bytes must pass through the app to be encrypted
            return super().signed_upload(key, content_type=content_type, max_bytes=max_bytes, ttl=ttl)
        validate_key(key)
        expires = int(ttl)
        params = {"Bucket": self.bucket, "Key": key, "ContentType": content_type, "ContentLength": max_bytes}
        extra_fields: dict[str, str] = {"Content-Type": content_type}
        conditions: list = [{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]]
        if self.encryption == "sse":
            params["ServerSideEncryption"] = "AES256"
            extra_fields["x-amz-server-side-encryption"] = "AES256"
            conditions.append({"x-amz-server-side-encryption": "AES256"})
        url = self.presign_client.generate_presigned_url("put_object", Params=params, ExpiresIn=expires)
        post = self.presign_client.generate_presigned_post(self.bucket, key, Fields=extra_fields,
                                                   Conditions=conditions, ExpiresIn=expires)
        headers = {"Content-Type": content_type}
        if self.encryption == "sse":
            headers["x-amz-server-side-encryption"] = "AES256"
        return SignedUpload(url=url, method="PUT", headers=headers, post_url=post["url"],
                            post_fields=post["fields"],
                            expires_at=datetime.now(timezone.utc) + timedelta(seconds=expires))

    def takes_direct_uploads(self) -> bool:
        return self.encryption != "app"

    def allow_browser_uploads(self, origins: list[str]) -> list[dict]:
        """The bucket's CORS rule for direct uploads (PUT, POST, parts whose ETag the page must read),
        under its own ID: the bucket's other rules are kept, an earlier version of this one replaced."""
        from botocore.exceptions import ClientError

        if not self.takes_direct_uploads():
            return []
        try:
            rules = self.client.get_bucket_cors(Bucket=self.bucket)["CORSRules"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchCORSConfiguration":
                raise self._errors(exc, "") from exc
            rules = []
        ours = {"ID": CORS_RULE_ID, "AllowedOrigins": list(origins), "AllowedMethods": ["PUT", "POST", "GET", "HEAD"],
                "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 3600}
        rules = [rule for rule in rules if rule.get("ID") != CORS_RULE_ID] + [ours]
        self._call("", self.client.put_bucket_cors, Bucket=self.bucket, CORSConfiguration={"CORSRules": rules})
        return rules

    def public_url(self, key: str) -> str | None:
        base = settings.MEDIA_S3_PUBLIC_ENDPOINT
        return f"{base}/{validate_key(key)}" if base else None



def _body_chunks(store: S3Store, key: str, body) -> Iterator[bytes]:  # noqa: ANN001 - botocore StreamingBody
    try:
        yield from store._call(key, lambda: iter(body.iter_chunks(READ_BLOCK)))
    finally:
        body.close()
