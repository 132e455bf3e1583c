"""Standard Webhooks signatures (https://www.standardwebhooks.com): what a receiver checks.

Flywheel signs each delivery with ``webhook-signature: v1,<base64 HMAC-SHA256>`` over
``{webhook-id}.{webhook-timestamp}.{body}``, with the endpoint's secret (``whsec_`` then
base64). While a rotated secret is still valid the header holds two signatures, separated
by a space; either one matching is enough. Verify the raw body bytes as received: JSON
parsed and serialised again is not the body that was signed.
"""

import base64
import binascii
import hashlib
import hmac
import json
import time
from typing import Any, Iterable, Optional, Protocol, Tuple, Union

__all__ = ["WebhookVerificationError", "verify", "sign", "DEFAULT_TOLERANCE"]

#: How far a delivery's timestamp may be from now, in seconds, before it is refused (a
#: replayed old delivery, or a clock far off).
DEFAULT_TOLERANCE = 300

_PREFIX = "whsec_"


class Headers(Protocol):
    """Anything with the request's headers as ``.items()``: a dict, ``http.server``'s
    message, Starlette's or httpx's headers."""

    def items(self) -> Iterable[Tuple[str, str]]: ...


class WebhookVerificationError(Exception):
    """The delivery is not one the secret's holder signed, or it is too old or too new."""


def _key(secret: Union[str, bytes]) -> bytes:
    if isinstance(secret, bytes):
        key = secret
    else:
        raw = secret[len(_PREFIX) :] if secret.startswith(_PREFIX) else secret
        try:
            key = base64.b64decode(raw, validate=True)
        except binascii.Error as e:
            raise ValueError("a webhook secret is whsec_ followed by base64") from e
    if not key:
        raise ValueError("the webhook secret is empty")
    return key


def sign(msg_id: str, timestamp: int, body: Union[bytes, str], secret: Union[str, bytes]) -> str:
    """The ``webhook-signature`` value (``v1,…``) for a delivery."""
    data = body.encode() if isinstance(body, str) else body
    mac = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + data, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify(
    headers: Headers,
    body: Union[bytes, str],
    secret: Union[str, bytes],
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: Optional[float] = None,
) -> Any:
    """Checks a delivery and returns its parsed JSON body.

    ``headers`` is the request's headers (names in any case: a plain dict, or a
    framework's header object); ``body`` the raw bytes as received. Raises
    `WebhookVerificationError` when a header is missing, the timestamp is more than
    ``tolerance`` seconds from ``now`` (the clock by default), or no ``v1`` signature
    matches (compared in constant time).
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not msg_id or not stamp or not signatures:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not a whole number of seconds") from None
    current = time.time() if now is None else now
    if timestamp < current - tolerance:
        raise WebhookVerificationError("the delivery's timestamp is too old")
    if timestamp > current + tolerance:
        raise WebhookVerificationError("the delivery's timestamp is too new")
    expected = sign(msg_id, timestamp, body, secret).encode()
    for candidate in signatures.split():
        version, _, _ = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(candidate.encode(), expected):
            data = body.decode() if isinstance(body, bytes) else body
            return json.loads(data) if data.strip() else None
    raise WebhookVerificationError("no signature matches")
