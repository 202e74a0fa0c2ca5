"""SigV4 query presigning of S3 GET URLs, without boto3's per-call machinery."""
from __future__ import annotations

import functools
import hashlib
import hmac
from datetime import datetime, timezone
from urllib.parse import parse_qsl, quote, urlsplit


class QueryPresigner:
    """SigV4 presigned GET URLs for one bucket, without boto3's per-call machinery.

    `generate_presigned_url` resolves the endpoint, validates parameters and runs its event
    hooks on every call: 0.35-0.7 ms per URL, 35-70 ms for a page of 100. Between two URLs of
    one bucket only the key, the response overrides and the time differ, so the endpoint
    (scheme, host, path prefix: virtual-hosted or path style) is taken from one URL boto3
    presigns for a probe key, and each URL is then signed with the documented SigV4
    query algorithm (what botocore's `S3SigV4QueryAuth` computes; tests compare the two
    byte for byte). 35-60 us per URL instead of 350-700 us on the benchmark machine.
    """

    PROBE_KEY = "mediastore-presign-probe"

    def __init__(self, client, bucket: str) -> None:  # noqa: ANN001 - a boto3 S3 client
        probe = urlsplit(client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": self.PROBE_KEY},
                                                       ExpiresIn=60))
        query = dict(parse_qsl(probe.query))
        access_key, _, self._region, self._service, _ = query["X-Amz-Credential"].split("/")
        if not probe.path.endswith("/" + self.PROBE_KEY) or query["X-Amz-SignedHeaders"] != "host":
            raise ValueError("unexpected presigned URL shape")
        self._path_prefix = probe.path[:-len(self.PROBE_KEY)]
        self._origin = f"{probe.scheme}://{probe.netloc}"
        default_port = {"http": 80, "https": 443}.get(probe.scheme)
        host = f"[{probe.hostname}]" if ":" in (probe.hostname or "") else probe.hostname
        self._host = host if probe.port in (None, default_port) else f"{host}:{probe.port}"
        self._credentials = client._request_signer._credentials  # boto3's own: refreshed as it does
        self._signing_keys: dict[tuple[str, str], bytes] = {}

    def url(self, key: str, expires: int, response: dict[str, str], *, now: datetime | None = None) -> str:
        credentials = self._credentials.get_frozen_credentials()
        stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
        scope = f"{stamp[:8]}/{self._region}/{self._service}/aws4_request"
        encoded = [(name, _query_quote(value)) for name, value in response.items()]  # names need no quoting
        encoded += [("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
                    ("X-Amz-Credential", _query_quote(f"{credentials.access_key}/{scope}")), ("X-Amz-Date", stamp),
                    ("X-Amz-Expires", str(expires)), ("X-Amz-SignedHeaders", "host")]
        if credentials.token is not None:
            encoded.append(("X-Amz-Security-Token", _query_quote(credentials.token)))
        path = self._path_prefix + quote(key, safe="/~")
        canonical = "\n".join(["GET", path, "&".join(f"{k}={v}" for k, v in sorted(encoded)),
                               f"host:{self._host}", "", "host", "UNSIGNED-PAYLOAD"])
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._signing_key(credentials.secret_key, stamp[:8]), to_sign.encode(),
                             hashlib.sha256).hexdigest()
        query = "&".join(f"{k}={v}" for k, v in encoded)
        return f"{self._origin}{path}?{query}&X-Amz-Signature={signature}"

    def _signing_key(self, secret: str, date: str) -> bytes:
        cached = self._signing_keys.get((secret, date))
        if cached is None:
            cached = ("AWS4" + secret).encode()
            for part in (date, self._region, self._service, "aws4_request"):
                cached = hmac.new(cached, part.encode(), hashlib.sha256).digest()
            self._signing_keys = {(secret, date): cached}  # only today's (and the current secret's)
        return cached


@functools.lru_cache(maxsize=1024)
def _query_quote(value: str) -> str:
    """SigV4's URI encoding of a query value (content types and credentials repeat: cached)."""
    return quote(value, safe="-_.~")
