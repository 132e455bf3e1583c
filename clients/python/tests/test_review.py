"""A scripted reviewer: claim, answer with "next", heartbeat, and the `work` loop."""

import threading
import uuid
from typing import List

import httpx
import pytest

from conftest import Project, Server, instant, item
from flywheel import Client, Escalate, FlywheelError, Skip
from flywheel.models import Task


def test_a_scripted_reviewer_resolves_the_review_queue(server: Server, project: Project) -> None:
    svc = Client(server.url, api_key=project.service_key)
    texts = {i: ("WIN a prize" if i % 2 else "see you at noon") for i in range(12)}
    decisions = svc.submit(project.name, [item(i, 0.6, texts[i]) for i in range(12)])
    assert {d["outcome"] for d in decisions} == {"review"}

    ann = Client(server.url, api_key=project.reviewer_keys[0])
    # A reviewer reads the queues' open tasks, not the project's stats.
    open_tasks = svc.stats(project.name)["open_tasks"]
    assert open_tasks > 0
    assert sum(q["open"] for q in ann.queues(project.name)["queues"].values()) == open_tasks
    with pytest.raises(FlywheelError) as refused:
        ann.stats(project.name)
    assert refused.value.status == 403
    seen: List[Task] = []

    def review(task: Task) -> str:  # an LLM would go here
        seen.append(task)
        return "spam" if "WIN" in task["item"]["payload"]["text"] else "ham"

    assert ann.work(project.name, review) == 12
    assert all(t["suggestion"] and t["suggestion"]["label"] == "spam" for t in seen)
    labels = {x["external_id"]: (x["label"], x["source"]) for x in svc.labels(project.name)}
    assert labels == {f"m{i}": ("spam" if i % 2 else "ham", "human") for i in range(12)}
    assert svc.stats(project.name)["open_tasks"] == 0
    assert ann.claim(project.name) is None


def test_claim_heartbeat_answer_and_next(server: Server, project: Project) -> None:
    Client(server.url, api_key=project.service_key).submit(project.name, [item(i, 0.5) for i in range(3)])
    ann = Client(server.url, api_key=project.reviewer_keys[0])
    task = ann.claim(project.name, queue="standard")
    assert task is not None and task["stage"] == "review" and task["labels"] == ["ham", "spam"]
    assert instant(ann.heartbeat(task)["lease_expires_at"]) >= instant(task["lease_expires_at"])

    result = ann.answer(task, "ham", review_id="r-1", note="plain", next=project.name)
    assert result["outcome"] == "resolved" and result.get("resolution", {})["label"] == "ham"  # type: ignore[index]
    nxt = result.get("next")
    assert nxt is not None and nxt["task_id"] != task["task_id"]
    # The same review_id again is the stored answer, not a second one.
    assert ann.answer(task, "ham", review_id="r-1")["outcome"] == "resolved"

    # An escalation goes one tier up; a skip gives the task back for someone else.
    assert ann.answer(nxt, escalate="not sure")["outcome"] == "adjudicate"
    last = ann.claim(project.name)
    assert last is not None
    assert ann.answer(last, skip="conflict of interest")["outcome"] == "requeued"
    assert ann.claim(project.name) is None  # never the same item twice
    bob = Client(server.url, api_key=project.reviewer_keys[1])
    assert bob.work(project.name, lambda t: Skip("no") if t["stage"] != "review" else "spam") == 1


def test_work_stops_after_max_tasks_and_takes_escalations(server: Server, project: Project) -> None:
    Client(server.url, api_key=project.service_key).submit(project.name, [item(i, 0.5) for i in range(4)])
    ann = Client(server.url, api_key=project.reviewer_keys[0])
    assert ann.work(project.name, lambda t: Escalate("unclear"), max_tasks=2) == 2
    assert ann.work(project.name, lambda t: "ham") == 2
    stats = Client(server.url, api_key=project.service_key).stats(project.name)
    assert stats["resolved"] == 2 and stats["open_tasks"] == 2  # two adjudications wait at tier 2


def test_answering_a_lost_lease_is_a_typed_error(server: Server, project: Project) -> None:
    Client(server.url, api_key=project.service_key).submit(project.name, [item(1, 0.5)])
    ann = Client(server.url, api_key=project.reviewer_keys[0])
    task = ann.claim(project.name)
    assert task is not None
    ann.answer(task, "ham")
    try:
        ann.answer(task, "spam")  # another review id: the lease is gone
    except FlywheelError as e:
        assert (e.status, e.code) == (409, "lease_lost")
    else:
        raise AssertionError("a second answer on a closed lease was accepted")


def test_work_heartbeats_while_a_slow_reviewer_thinks(server: Server, project: Project) -> None:
    Client(server.url, api_key=project.service_key).submit(project.name, [item(1, 0.5)])
    beats = threading.Semaphore(0)

    def count(response: httpx.Response) -> None:
        if response.request.url.path.endswith("/heartbeat"):
            assert response.status_code == 200
            beats.release()

    http = httpx.Client(
        base_url=server.url,
        headers={"authorization": f"Bearer {project.reviewer_keys[0]}"},
        event_hooks={"response": [count]},
    )

    def slow(task: Task) -> str:  # thinks until the lease has been extended twice
        assert beats.acquire(timeout=30) and beats.acquire(timeout=30)
        return "spam"

    assert Client(server.url, http=http).work(project.name, slow, heartbeat_every=0.05) == 1


def test_an_answer_is_undone_or_amended(server: Server, project: Project) -> None:
    Client(server.url, api_key=project.service_key).submit(project.name, [item(i, 0.5) for i in range(2)])
    ann = Client(server.url, api_key=project.reviewer_keys[0])
    task = ann.claim(project.name, queue="standard")
    assert task is not None
    first = ann.answer(task, "spam", review_id="r-amend")
    assert first["outcome"] == "resolved"
    # The task closed with the answer: the change re-opens the item for adjudication.
    changed = ann.amend("r-amend", "ham", reason="misread it", amend_id="m-1")
    assert changed["outcome"] == "amended" and changed.get("previous") == "spam" and changed["label"] == "ham"
    assert changed.get("adjudication_task_id")
    # The same amend_id is the stored change, not a second adjudication.
    assert ann.amend("r-amend", "ham", amend_id="m-1") == changed
    try:
        ann.amend("no-such-answer", "ham")
        raise AssertionError("an unknown review_id was amended")
    except FlywheelError as e:
        assert e.status == 404


def test_a_multi_label_project_is_answered_with_sets(server: Server, admin: Client) -> None:
    name = f"multi-{uuid.uuid4().hex[:8]}"
    policy = {"rules": [{"name": "all", "when": "max_score >= 0.0", "action": "review", "queue": "q"}]}
    created = admin.create_project(name, ["hate", "spam", "violence"], policy, label_mode="multi")
    assert created["label_mode"] == "multi" and admin.project(name)["label_mode"] == "multi"
    svc = Client(server.url, api_key=admin.create_key([name])["api_key"])
    ann = Client(server.url, api_key=admin.create_reviewer(f"{name}-r", [1], [name])["api_key"])
    scores = {"hate": 0.9, "spam": 0.8, "violence": 0.1}  # independent: they need not sum to 1
    svc.submit(name, [{"external_id": "a", "payload": {}, "prediction": {"model": "m", "scores": scores}}])
    task = ann.claim(name)
    assert task is not None
    with pytest.raises(FlywheelError) as refused:
        ann.answer(task, labels=["hate", "eggs"])
    assert refused.value.field == "labels[1]"
    result = ann.answer(task, labels=["spam", "hate"])
    assert result["resolution"] and result["resolution"].get("labels") == ["hate", "spam"]
    assert [(x.get("labels"), x["source"]) for x in svc.labels(name)] == [(["hate", "spam"], "human")]
    amended = ann.amend(result["review_id"], labels=[])
    assert amended["outcome"] == "amended"
    agreement = admin.agreement(name)
    assert agreement["label_mode"] == "multi" and agreement["answers"] == 1
    assert agreement.get("distance") == "masi" and agreement["labels"] == ["hate", "spam", "violence"]
