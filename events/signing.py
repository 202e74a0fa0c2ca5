"""Standard Webhooks signatures (standardwebhooks.com): what a receiver's library verifies.

The secret is `whsec_` + base64 of random bytes; the signature is
`v1,` + base64(HMAC-SHA256(secret bytes, f"{id}.{timestamp}.{body}")), sent as `webhook-signature`
beside `webhook-id` and `webhook-timestamp` (Unix seconds).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24


def secret_new() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature(secret: str, *, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(secret: str, *, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(secret, message_id=message_id, timestamp=timestamp, body=body)}
