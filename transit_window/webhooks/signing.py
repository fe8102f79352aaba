"""Standard Webhooks signatures (https://www.standardwebhooks.com, spec v1).

The secret is `whsec_` + base64 of 32 random bytes; the signed content is `{webhook-id}.{webhook-timestamp}.{body}`
with the timestamp in integer Unix seconds; the signature is `v1,` + base64(HMAC-SHA256(secret bytes, content)).
Several signatures (a rotation's new and old secret) go space-separated in one `webhook-signature` header.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = (24, 64)  # the spec: "between 24 bytes (192 bits) and 64 bytes (512 bits)"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_bytes(secret: str) -> bytes:
    raw = secret.removeprefix(SECRET_PREFIX)
    return base64.b64decode(raw + "=" * (-len(raw) % 4))


def check_secret(secret: str) -> str:
    """A secret a receiver brings (`whsec_` + standard base64 of 24 to 64 bytes), or a ValueError saying why not."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with {SECRET_PREFIX}")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error:
        raise ValueError(f"a webhook secret is {SECRET_PREFIX} and then standard base64") from None
    low, high = SECRET_BYTES
    if not low <= len(key) <= high:
        raise ValueError(f"a webhook secret's key has {low} to {high} bytes, not {len(key)}")
    return secret


def sign(secret: str, *, msg_id: str, timestamp: int, body: str) -> str:
    content = f"{msg_id}.{timestamp}.{body}".encode()
    digest = hmac.new(secret_bytes(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(keys: list[str], *, msg_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The three Standard Webhooks headers, signed with every key in `keys` (current first)."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(key, msg_id=msg_id, timestamp=timestamp, body=body) for key in keys),
    }
