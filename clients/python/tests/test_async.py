"""`AsyncClient` on the same paths as `Client`: submit with duplicates, the feed resumed
from its cursor, a reviewer (an async function) resolving tasks, errors."""

import asyncio
import inspect
from typing import Any, Awaitable, Callable, Dict, List, TypeVar

import httpx
import pytest

from conftest import Project, Server, item
from flywheel import AsyncClient, Client, FlywheelError
from flywheel.models import Task

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
