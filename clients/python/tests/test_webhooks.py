"""`flywheel.webhooks.verify` against the Standard Webhooks test vector.

The vector is the one the standard-webhooks repository's libraries test their signing
with (libraries/go/webhook_test.go, `TestWebhookSign`): this secret, id, timestamp and
body sign to this signature.
"""

import sys
import threading
import time
from http.server import HTTPServer
from pathlib import Path
from typing import Any, Dict, List

import httpx
import pytest

from flywheel import webhooks
from flywheel.webhooks import WebhookVerificationError, verify

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

HEADERS = {"webhook-id": MSG_ID, "webhook-timestamp": str(TIMESTAMP), "webhook-signature": SIGNATURE}


def test_the_published_vector_signs_and_verifies() -> None:
    assert webhooks.sign(MSG_ID, TIMESTAMP, BODY, SECRET) == SIGNATURE
    assert verify(HEADERS, BODY, SECRET, now=TIMESTAMP) == {"test": 2432232314}
    # Header names in any case, the body as text, the secret without its prefix.
    upper = {k.title(): v for k, v in HEADERS.items()}
    assert verify(upper, BODY.decode(), SECRET.removeprefix("whsec_"), now=TIMESTAMP + 299)


def test_one_matching_signature_of_several_is_enough() -> None:
    other = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
    headers = {**HEADERS, "webhook-signature": f"{other} v1a,{SIGNATURE[3:]} {SIGNATURE}"}
    assert verify(headers, BODY, SECRET, now=TIMESTAMP)


@pytest.mark.parametrize(
    "change, now, message",
    [
        ({}, TIMESTAMP + 301, "too old"),
        ({}, TIMESTAMP - 301, "too new"),
        ({"webhook-signature": "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="}, TIMESTAMP, "no signature"),
        ({"webhook-signature": "v2," + SIGNATURE[3:]}, TIMESTAMP, "no signature"),
        ({"webhook-id": "msg_other"}, TIMESTAMP, "no signature"),
        ({"webhook-timestamp": str(TIMESTAMP + 1)}, TIMESTAMP, "no signature"),
        ({"webhook-timestamp": "yesterday"}, TIMESTAMP, "whole number"),
        ({"webhook-id": ""}, TIMESTAMP, "missing"),
    ],
)
def test_what_is_refused(change: Dict[str, str], now: int, message: str) -> None:
    with pytest.raises(WebhookVerificationError, match=message):
        verify({**HEADERS, **change}, BODY, SECRET, now=now)


def test_a_changed_body_or_secret_is_refused() -> None:
    with pytest.raises(WebhookVerificationError):
        verify(HEADERS, b'{"test": 2432232315}', SECRET, now=TIMESTAMP)
    with pytest.raises(WebhookVerificationError):
        verify(HEADERS, BODY, "whsec_" + "A" * 32, now=TIMESTAMP)
    with pytest.raises(ValueError):
        verify(HEADERS, BODY, "whsec_not base64!", now=TIMESTAMP)


def test_the_example_receiver(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    from webhook_receiver import make_handler

    got: List[Any] = []
    httpd = HTTPServer(("127.0.0.1", 0), make_handler(SECRET, got.append))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/hook"
    try:
        body = b'{"type":"item.resolved","timestamp":"2026-12-05T00:00:00Z","data":{"label":"spam"}}'
        now = int(time.time())
        headers = {
            "webhook-id": "msg_1",
            "webhook-timestamp": str(now),
            "webhook-signature": webhooks.sign("msg_1", now, body, SECRET),
            "content-type": "application/json",
        }
        assert httpx.post(url, content=body, headers=headers).status_code == 204
        assert httpx.post(url, content=body, headers=headers).status_code == 204  # a retry
        assert httpx.post(url, content=body.replace(b"spam", b"ham"), headers=headers).status_code == 400
        assert got == [{"type": "item.resolved", "timestamp": "2026-12-05T00:00:00Z", "data": {"label": "spam"}}]
    finally:
        httpd.shutdown()
