"""What an app-signed `/files/<key>` URL may still do, decided by the file's row.

A signature only proves that the app once granted an operation; whether it still may happen
depends on the file:
- an upload URL writes once, to its pending file's staging key, inside the upload window:
  `media_upload_claim` takes that one write atomically, `media_upload_release` gives it back
  when the write fails (so the client can retry); a successful write keeps the claim;
- a download URL serves only the object of an active file (or of an active alias's original):
  `media_object_live`, so deleting a file hides its bytes at once.
"""
from __future__ import annotations

from django.utils import timezone

from config.errors import Conflict, PermissionDenied
from media_app.models import MediaFile
from storage_app.backends import get_store
from storage_app.keys import parse_staging_key

Status = MediaFile.Status


class UploadNotAllowed(PermissionDenied):
    code = "upload_not_allowed"
    message = "Nothing can be uploaded to this key."


class UploadNotPending(Conflict):
    code = "upload_not_pending"
    message = "This upload was completed, cancelled or has expired."


class UploadAlreadyReceived(Conflict):
    code = "upload_already_received"
    message = "The bytes of this upload have already been received."


class UploadInProgress(Conflict):
    code = "upload_in_progress"
    message = "Another request is uploading these bytes now."


def media_upload_claim(*, key: str) -> str:
    """Take the one write an upload URL allows; the media id, or why not (403/409).

    The conditional UPDATE is the claim: of two concurrent requests only one matches
    `upload_claimed_at IS NULL`.
    """
    parsed = parse_staging_key(key)
    if parsed is None:
        raise UploadNotAllowed()
    org_id, media_id = parsed
    now = timezone.now()
    pending = MediaFile.objects.filter(pk=media_id, organization_id=org_id, status=Status.PENDING,
                                       upload_expires_at__gt=now)
    if not pending.filter(upload_claimed_at__isnull=True).update(upload_claimed_at=now):
        if not pending.exists():
            raise UploadNotPending()
        raise UploadAlreadyReceived() if get_store().exists(key) else UploadInProgress()
    if get_store().exists(key):  # bytes that came another way (a test, an operator): never replaced
        raise UploadAlreadyReceived()
    return media_id


def media_upload_release(*, key: str) -> None:
    """A failed write gives its claim back (the failed write left no object)."""
    parsed = parse_staging_key(key)
    if parsed is not None:
        MediaFile.objects.filter(pk=parsed[1], status=Status.PENDING).update(upload_claimed_at=None)


def media_object_live(*, key: str) -> bool:
    """Whether `key` holds the bytes of an active file: its own, or its active aliases'.

    At most two indexed lookups (the unique `storage_key`, then `duplicate_of`)."""
    row = MediaFile.objects.filter(storage_key=key).values_list("pk", "status").first()
    if row is None:
        return False
    if row[1] == Status.ACTIVE:
        return True
    return MediaFile.objects.filter(duplicate_of_id=row[0], status=Status.ACTIVE).exists()
