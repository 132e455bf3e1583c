"""The label feed and the event log as iterators that keep their cursor."""

import itertools
import threading
from typing import List

from conftest import Project, Server, item
from flywheel import Client


def test_the_label_feed_resumes_from_a_saved_cursor(server: Server, project: Project) -> None:
    fw = Client(server.url, api_key=project.service_key)
    fw.submit(project.name, [item(i, 0.99 if i % 3 else 0.4) for i in range(30)])  # 20 auto
    # A job reads 7 labels in pages of 3 (so it stops inside a page), saves the cursor, dies.
    feed = fw.labels(project.name, limit=3)
    first = list(itertools.islice(feed, 7))
    saved = feed.cursor
    assert saved == first[-1]["cursor"]
    # The next run resumes there: nothing lost, nothing repeated.
    again = Client(server.url, api_key=project.service_key)
    rest = list(again.labels(project.name, after=saved, limit=3))
    ids = [x["external_id"] for x in first + rest]
    assert ids == [f"m{i}" for i in range(30) if i % 3]
    assert [x["cursor"] for x in first + rest] == sorted({x["cursor"] for x in first + rest})
    # Caught up, a feed that does not follow ends, and its cursor stays put.
    tail = again.labels(project.name, after=rest[-1]["cursor"])
    assert list(tail) == [] and tail.cursor == rest[-1]["cursor"]


def test_follow_waits_for_new_labels(server: Server, project: Project) -> None:
    fw = Client(server.url, api_key=project.service_key)
    fw.submit(project.name, [item(0, 0.99)])
    feed = fw.labels(project.name, follow=True, poll_interval=0.05)
    got: List[str] = [next(feed)["external_id"]]

    def later() -> None:
        Client(server.url, api_key=project.service_key).submit(project.name, [item(1, 0.99), item(2, 0.98)])

    # The feed has caught up; it blocks until the other thread's labels arrive.
    threading.Timer(0.2, later).start()
    got += [next(feed)["external_id"], next(feed)["external_id"]]
    assert got == ["m0", "m1", "m2"]


def test_the_event_log_keeps_its_cursor(server: Server, admin: Client, project: Project) -> None:
    Client(server.url, api_key=project.service_key).submit(project.name, [item(1, 0.99), item(2, 0.5)])
    events = admin.events(project.name, limit=2)
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "project.created" and kinds.count("item.decided") == 2
    assert events.cursor > 0
    assert list(admin.events(project.name, after=events.cursor)) == []
    # The log of everything holds this project's events too.
    everything = [e["seq"] for e in admin.events(after=events.cursor - 1)]
    assert events.cursor in everything
