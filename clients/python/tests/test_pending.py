"""The methods whose routes other branches bring (exports, webhooks), against a stand-in
transport: what they send, and what they do with the answer. Their tests against a real
server come with those branches."""

import asyncio
import json
from pathlib import Path
from typing import Iterator, List, Tuple

import httpx
import pytest

from flywheel import AsyncClient, Client, FlywheelError

LINES = [json.dumps({"external_id": f"m{i}", "label": "spam"}).encode() + b"\n" for i in range(2000)]


class Chunks(httpx.SyncByteStream, httpx.AsyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        yield from LINES

    async def __aiter__(self):  # type: ignore[no-untyped-def]
        for line in LINES:
            yield line


def handler(seen: List[Tuple[str, str, bytes]]):  # type: ignore[no-untyped-def]
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, str(request.url.copy_with(scheme="http", host="x", port=None)), request.content))
        if request.url.path.endswith("/export"):
            if request.url.params["format"] == "xml":
                return httpx.Response(422, json={"error": {"code": "invalid", "message": "no", "field": "format"}})
            return httpx.Response(200, stream=Chunks())
        if request.method == "DELETE":
            return httpx.Response(204)
        return httpx.Response(200, json={"id": 7})

    return handle


def test_export_streams_to_a_file(tmp_path: Path) -> None:
    seen: List[Tuple[str, str, bytes]] = []
    fw = Client("http://x", http=httpx.Client(base_url="http://x", transport=httpx.MockTransport(handler(seen))))
    out = tmp_path / "sms.jsonl"
    assert fw.export("sms", out, "jsonl", since="2026-01-01T00:00:00Z") == sum(map(len, LINES))
    assert out.read_bytes() == b"".join(LINES)
    assert seen[0][:2] == ("GET", "http://x/v1/projects/sms/export?format=jsonl&since=2026-01-01T00%3A00%3A00Z")
    with pytest.raises(FlywheelError) as e:
        fw.export("sms", tmp_path / "bad", "xml")
    assert (e.value.status, e.value.field) == (422, "format")

    async def main() -> int:
        transport = httpx.MockTransport(handler(seen))
        async with AsyncClient("http://x", http=httpx.AsyncClient(base_url="http://x", transport=transport)) as a:
            return await a.export("sms", tmp_path / "async.jsonl")

    assert asyncio.run(main()) == sum(map(len, LINES))
    assert (tmp_path / "async.jsonl").read_bytes() == b"".join(LINES)


def test_webhook_methods_send_what_the_routes_take() -> None:
    seen: List[Tuple[str, str, bytes]] = []
    fw = Client("http://x", http=httpx.Client(base_url="http://x", transport=httpx.MockTransport(handler(seen))))
    fw.create_webhook("sms", "https://example.com/h", events=["item.*"], enabled=True)
    fw.webhooks("sms")
    fw.webhook("sms", 7)
    fw.update_webhook("sms", 7, enabled=False)
    fw.rotate_webhook_secret("sms", 7)
    fw.replay_webhook("sms", 7, from_seq=42)
    fw.webhook_deliveries("sms", 7)
    fw.delete_webhook("sms", 7)
    base = "http://x/v1/projects/sms/webhooks"
    assert [(m, u, json.loads(b) if b else None) for m, u, b in seen] == [
        ("POST", base, {"url": "https://example.com/h", "events": ["item.*"], "enabled": True}),
        ("GET", base, None),
        ("GET", f"{base}/7", None),
        ("PATCH", f"{base}/7", {"enabled": False}),
        ("POST", f"{base}/7/rotate", None),
        ("POST", f"{base}/7/replay", {"from_seq": 42}),
        ("GET", f"{base}/7/deliveries", None),
        ("DELETE", f"{base}/7", None),
    ]
