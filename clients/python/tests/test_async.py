"""`AsyncClient` on the same paths as `Client`: submit with duplicates, the feed resumed
from its cursor, a reviewer (an async function) resolving tasks, errors, a webhook's life
with a delivery into the example receiver, an export and its import."""

import asyncio
import inspect
import json
import sys
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional, TypeVar

import httpx
import pytest

from conftest import Project, Server, item, new_project
from flywheel import AsyncClient, Client, FlywheelError
from flywheel.models import Task
from flywheel.webhooks import verify
from receivers import Request, receiving, recorder, url

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from webhook_receiver import make_handler

T = TypeVar("T")


def run(f: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(f())  # type: ignore[arg-type]


def test_the_async_client_has_the_sync_clients_methods() -> None:
    def public(cls: type) -> Dict[str, inspect.Signature]:
        return {n: inspect.signature(m) for n, m in vars(cls).items() if not n.startswith("_") and callable(m)}

    sync, aio = public(Client), public(AsyncClient)
    assert set(sync) - {"close"} == set(aio) - {"aclose"}
    for name, sig in sync.items():
        if name == "close":
            continue
        assert list(sig.parameters) == list(aio[name].parameters), name
        feeds = name in ("labels", "events")
        assert inspect.iscoroutinefunction(vars(AsyncClient)[name]) is not feeds, name


def test_submit_feed_and_review(server: Server, project: Project) -> None:
    async def main() -> None:
        async with AsyncClient(server.url, api_key=project.service_key) as svc:
            first = await svc.submit(project.name, (item(i, 0.99 if i < 6 else 0.5) for i in range(10)), batch_size=3)
            again = await svc.submit(project.name, [item(9, 0.99), item(0, 0.5)])
            assert [d["external_id"] for d in first] == [f"m{i}" for i in range(10)]
            assert [(d["duplicate"], d["outcome"]) for d in again] == [(True, "review"), (True, "auto")]

            feed = svc.labels(project.name, limit=2)
            head: List[str] = []
            async for label in feed:
                head.append(label["external_id"])
                if len(head) == 3:
                    break
            rest = [x["external_id"] async for x in svc.labels(project.name, after=feed.cursor)]
            assert head + rest == [f"m{i}" for i in range(6)]

            async with AsyncClient(server.url, api_key=project.reviewer_keys[0]) as ann:

                async def review(task: Task) -> str:
                    await asyncio.sleep(0)
                    return "ham"

                assert await ann.work(project.name, review) == 4
                assert await ann.claim(project.name) is None

            resolved = [x async for x in svc.labels(project.name, after=feed.cursor)]
            assert [(x["label"], x["source"]) for x in resolved[-4:]] == [("ham", "human")] * 4
            assert (await svc.stats(project.name))["open_tasks"] == 0

    run(main)


def test_async_errors_are_typed(server: Server, project: Project) -> None:
    async def main() -> Any:
        async with AsyncClient(server.url, api_key=project.service_key) as svc:
            await svc.item(project.name, "never-sent")

    with pytest.raises(FlywheelError) as e:
        run(main)
    assert (e.value.status, e.value.code) == (404, "not_found")


def test_async_work_heartbeats_while_an_async_reviewer_thinks(server: Server, project: Project) -> None:
    Client(server.url, api_key=project.service_key).submit(project.name, [item(1, 0.5)])
    beats: List[int] = []

    async def count(response: httpx.Response) -> None:
        if response.request.url.path.endswith("/heartbeat"):
            beats.append(response.status_code)

    async def main() -> int:
        http = httpx.AsyncClient(
            base_url=server.url,
            headers={"authorization": f"Bearer {project.reviewer_keys[0]}"},
            event_hooks={"response": [count]},
        )

        async def slow(task: Task) -> str:  # thinks until the lease has been extended twice
            for _ in range(3000):
                if len(beats) >= 2:
                    return "ham"
                await asyncio.sleep(0.01)
            raise AssertionError("no heartbeats")

        async with AsyncClient(server.url, http=http) as ann:
            return await ann.work(project.name, slow, heartbeat_every=0.05)

    assert run(main) == 1
    assert beats[:2] == [200, 200]


async def until(check: Callable[[], Awaitable[Optional[T]]], what: str) -> T:
    """`conftest.eventually` for a coroutine: its first answer that is not ``None``."""
    for _ in range(1200):  # a bound on a hang only
        got = await check()
        if got is not None:
            return got
        await asyncio.sleep(0.05)
    pytest.fail(f"never happened: {what}")


def test_async_webhooks(server: Server, project: Project) -> None:
    got: List[Any] = []
    requests: List[Request] = []

    async def main() -> None:
        async with (
            AsyncClient(server.url, api_key=server.admin_key) as fw,
            AsyncClient(server.url, api_key=project.reviewer_keys[0]) as ann,
        ):
            with receiving() as httpd:
                hook = await fw.create_webhook(project.name, url(httpd), ["item.resolved"], enabled=True)
                httpd.RequestHandlerClass = make_handler(hook["secret"], got.append)
                assert [h["id"] for h in await fw.webhooks(project.name)] == [hook["id"]]
                assert (await fw.webhook(project.name, hook["id"]))["url"] == url(httpd)
                await fw.submit(project.name, [item(1, 0.5)])
                assert await ann.work(project.name, lambda task: "spam") == 1

                async def delivered() -> Optional[Any]:
                    return got[0] if got else None

                event = await until(delivered, "the delivery of m1's item.resolved")
                assert (event["type"], event["external_id"], event["data"]["label"]) == ("item.resolved", "m1", "spam")
                replayed = await fw.replay_webhook(project.name, hook["id"], event["seq"])
                assert replayed["cursor"] == event["seq"] - 1

                async def attempts() -> Optional[List[Any]]:
                    found = await fw.webhook_deliveries(project.name, hook["id"])
                    return found if len(found) == 2 else None

                again, first = await until(attempts, "the replayed attempt")
                assert again["message_id"] == first["message_id"] and got == [event]

            rotated = await fw.rotate_webhook_secret(project.name, hook["id"])
            with receiving(recorder(requests)) as rec:
                await fw.update_webhook(project.name, hook["id"], url=url(rec))
                await fw.submit(project.name, [item(2, 0.5)])
                assert await ann.work(project.name, lambda task: "ham") == 1

                async def recorded() -> Optional[Request]:
                    return requests[0] if requests else None

                headers, body = await until(recorded, "the delivery of m2")
            for secret in (hook["secret"], rotated["secret"]):
                assert verify(headers, body, secret)["external_id"] == "m2"
            assert not (await fw.update_webhook(project.name, hook["id"], enabled=False))["enabled"]
            await fw.delete_webhook(project.name, hook["id"])
            assert await fw.webhooks(project.name) == []

    run(main)


def test_async_export_and_import(server: Server, admin: Client, project: Project, tmp_path: Path) -> None:
    other = new_project(admin)

    async def main() -> None:
        async with AsyncClient(server.url, api_key=server.admin_key) as fw:
            await fw.submit(project.name, [item(i, 0.99 if i % 2 else 0.01) for i in range(1500)])
            out = tmp_path / "all.jsonl"
            assert await fw.export(project.name, out, "jsonl") == out.stat().st_size
            rows = [json.loads(line) for line in out.read_text().splitlines()]
            assert [r["external_id"] for r in rows] == [f"m{i}" for i in range(1500)]
            await fw.export(project.name, tmp_path / "all.csv", "csv", source="auto")
            assert len((tmp_path / "all.csv").read_text().splitlines()) == 1501  # and the header
            report = await fw.import_file(other.name, "jsonl", out)
            assert report == {"rows": 1500, "items": 1500, "duplicates": 0, "labels": 0, "gold": 0}
            with pytest.raises(FlywheelError) as e:
                await fw.import_file(other.name, "jsonl", out, as_="both")
            assert (e.value.status, e.value.field) == (400, "as")
            assert (await fw.stats(other.name))["items"] == 1500

    run(main)
