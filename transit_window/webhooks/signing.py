"""Standard Webhooks signatures (https://www.standardwebhooks.com, spec v1).

The secret is `whsec_` + base64 of 32 random bytes; the signed content is `{webhook-id}.{webhook-timestamp}.{body}`
with the timestamp in integer Unix seconds; the signature is `v1,` + base64(HMAC-SHA256(secret bytes, content)).
Several signatures (a rotation's new and old secret) go space-separated in one `webhook-signature` header.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_bytes(secret: str) -> bytes:
    raw = secret.removeprefix(SECRET_PREFIX)
    return base64.b64decode(raw + "=" * (-len(raw) % 4))


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
