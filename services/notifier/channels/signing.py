"""Webhook signatures: HMAC-SHA256 over `<timestamp>.<body>`, so receivers can reject forgeries
and replays. Receivers in Python may import `verify`; docs/notifications.md shows the recipe."""

import hashlib
import hmac

ID_HEADER = "Backorder-Notification-Id"
TIMESTAMP_HEADER = "Backorder-Timestamp"
SIGNATURE_HEADER = "Backorder-Signature"
SCHEME = "v1="


def sign(secret: bytes, *, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return SCHEME + digest


def verify(
    secret: bytes, *, timestamp: str, signature: str, body: bytes, now: float, tolerance: float
) -> bool:
    """True for a genuine request signed within `tolerance` seconds of `now`."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent_at) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp=timestamp, body=body), signature)
