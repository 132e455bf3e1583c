"""Submitting items: batching of any iterable, idempotency, retries, order of decisions."""

from collections.abc import Iterator
from typing import Any, List

import httpx
import pytest

from conftest import Project, Server, item
from flywheel import Client, FlywheelError, Retry


def test_the_first_lines_a_user_writes(server: Server, project: Project) -> None:
    fw = Client(server.url, api_key=project.service_key)
    decisions = fw.submit(
        project.name,
        [
            {
                "external_id": "m1",
                "payload": {"text": "WIN now"},
                "prediction": {"model": "nb", "scores": {"spam": 0.97, "ham": 0.03}},
            }
        ],
    )
    assert [(d["external_id"], d["outcome"], d.get("label")) for d in decisions] == [("m1", "auto", "spam")]
    labels = list(fw.labels(project.name))
    assert [(x["external_id"], x["label"], x["source"]) for x in labels] == [("m1", "spam", "auto")]


def test_duplicates_get_their_first_decision_back_in_input_order(server: Server, project: Project) -> None:
    fw = Client(server.url, api_key=project.service_key)
    first = fw.submit(project.name, [item(1, 0.99), item(2, 0.5)])
    assert [d["duplicate"] for d in first] == [False, False]
    # m2 and m1 again, with other scores, around a new item: the stored decisions come back.
    again = fw.submit(project.name, [item(2, 0.99), item(3, 0.01), item(1, 0.5)])
    assert [d["external_id"] for d in again] == ["m2", "m3", "m1"]
    assert [d["duplicate"] for d in again] == [True, False, True]
    assert again[0]["outcome"] == "review" and again[2]["outcome"] == "auto"
    assert again[0]["item_id"] == first[1]["item_id"]
    # The same id twice in one call: the second is a duplicate of the first.
    twice = fw.submit(project.name, [item(4, 0.99), item(4, 0.2)])
    assert [(d["external_id"], d["duplicate"], d["outcome"]) for d in twice] == [
        ("m4", False, "auto"),
        ("m4", True, "auto"),
    ]
    assert fw.stats(project.name)["items"] == 4


def test_a_25000_item_iterable_is_sent_in_batches(server: Server, project: Project) -> None:
    sent: List[int] = []

    def count(request: httpx.Request) -> None:
        if request.url.path.endswith("/items"):
            sent.append(len(request.content))

    http = httpx.Client(
        base_url=server.url,
        headers={"authorization": f"Bearer {project.service_key}"},
        timeout=120,
        event_hooks={"request": [count]},
    )
    fw = Client(server.url, http=http)

    def generate() -> Iterator[Any]:  # never a list: the client must not need len()
        for i in range(25_000):
            yield item(i, 0.99 if i % 4 else 0.3)

    decisions = fw.submit(project.name, generate(), batch_size=2_500)
    assert len(sent) == 10
    assert [d["external_id"] for d in decisions] == [f"m{i}" for i in range(25_000)]
    assert sum(d["outcome"] == "auto" for d in decisions) == 18_750
    stats = fw.stats(project.name)
    assert (stats["items"], stats["auto"], stats["review"]) == (25_000, 18_750, 6_250)
    # The default batch is 1,000; more than the server takes is refused before sending.
    with pytest.raises(ValueError, match="batch_size"):
        fw.submit(project.name, [item(0, 0.5)], batch_size=10_001)


class Flaky(httpx.BaseTransport):
    """Passes requests to the real server, but the first `lost` submissions are carried out
    and their answer lost (the connection drops after the server wrote them), and the next
    `refused` get a 503 without reaching the server."""

    def __init__(self, lost: int, refused: int) -> None:
        self.inner = httpx.HTTPTransport()
        self.lost = lost
        self.refused = refused
        self.calls = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.lost:
            self.lost -= 1
            self.inner.handle_request(request).read()
            raise httpx.ReadError("connection reset", request=request)
        if self.refused:
            self.refused -= 1
            return httpx.Response(503, json={"error": {"code": "unavailable", "message": "try again"}})
        return self.inner.handle_request(request)


def test_transient_failures_are_retried_and_idempotency_makes_it_safe(server: Server, project: Project) -> None:
    flaky = Flaky(lost=1, refused=2)
    http = httpx.Client(
        base_url=server.url, headers={"authorization": f"Bearer {project.service_key}"}, transport=flaky
    )
    fw = Client(server.url, http=http, retry=Retry(attempts=4, backoff=0.01))
    decisions = fw.submit(project.name, [item(1, 0.99), item(2, 0.5)])
    assert flaky.calls == 4
    # The first attempt was written; the retry that got through was told so.
    assert [(d["external_id"], d["duplicate"]) for d in decisions] == [("m1", True), ("m2", True)]
    assert fw.stats(project.name)["items"] == 2

    # Out of attempts, the last failure is raised, typed.
    fw = Client(server.url, http=http, retry=Retry(attempts=2, backoff=0.01))
    flaky.refused = 5
    with pytest.raises(FlywheelError) as e:
        fw.submit(project.name, [item(3, 0.99)])
    assert (e.value.status, e.value.code) == (503, "unavailable")


def test_a_claim_is_not_retried(server: Server, project: Project) -> None:
    flaky = Flaky(lost=0, refused=1)
    http = httpx.Client(
        base_url=server.url, headers={"authorization": f"Bearer {project.reviewer_keys[0]}"}, transport=flaky
    )
    fw = Client(server.url, http=http, retry=Retry(attempts=4, backoff=0.01))
    with pytest.raises(FlywheelError) as e:
        fw.claim(project.name)
    assert e.value.status == 503 and flaky.calls == 1
