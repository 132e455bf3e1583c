"""`workload`: where reviewer time goes, sync and async, against a real server (its wall
clock, so times on task are not asserted: the server's API tests check every figure under
a manual clock)."""

import asyncio

import pytest

from conftest import Project, Server, item
from flywheel import AsyncClient, Client, FlywheelError


def test_workload_groups_the_answers_five_ways(server: Server, project: Project) -> None:
    svc = Client(server.url, api_key=project.service_key)
    svc.submit(project.name, [item(i, 0.5) for i in range(3)])
    ann = Client(server.url, api_key=project.reviewer_keys[0])
    assert ann.work(project.name, lambda t: "spam") == 3

    w = svc.workload(project.name)
    assert w["answers"] == 3
    assert [(r["key"], r["answers"]) for r in w["reviewer"]] == [(f"{project.name}-r0", 3)]
    assert [(r["key"], r["answers"]) for r in w["label"]] == [("spam", 3)]
    assert [(r.get("key"), r["answers"]) for r in w["failure_category"]] == [(None, 3)]
    assert [r["key"] for r in w["tier"]] == ["1"] and [r["key"] for r in w["queue"]] == ["standard"]
    assert w["findings"] == []

    empty = svc.workload(project.name, since="2001-01-01T00:00:00Z", until="2001-01-02T00:00:00Z")
    assert (empty["answers"], empty["since"], empty["reviewer"]) == (0, "2001-01-01T00:00:00Z", [])
    with pytest.raises(FlywheelError) as e:
        svc.workload(project.name, since="yesterday")
    assert (e.value.status, e.value.field) == (400, "since")

    async def main() -> None:
        async with AsyncClient(server.url, api_key=project.service_key) as fw:
            assert await fw.workload(project.name, since=w["since"], until=w["until"]) == w

    asyncio.run(main())
