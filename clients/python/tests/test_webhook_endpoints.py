"""Webhook endpoints through the client, against the real server: a delivery into the
example receiver (`examples/webhook_receiver.py`), checked with `flywheel.webhooks.verify`;
list, read, replay (the same ``webhook-id``: the receiver skips it), the attempts, a
rotation (two signatures, either secret verifies), a change of URL, disabling, deleting."""

import json
import sys
from pathlib import Path
from typing import Any, Callable, List, Optional

import pytest

from conftest import Project, Server, eventually, item
from flywheel import Client, FlywheelError
from flywheel.models import Delivery
from flywheel.webhooks import WebhookVerificationError, verify
from receivers import Request, receiving, recorder, url

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from webhook_receiver import make_handler


def deliveries(admin: Client, project: str, webhook_id: int, at_least: int) -> Callable[[], Optional[List[Delivery]]]:
    """A check for `eventually`: the endpoint's attempts once there are ``at_least``."""

    def check() -> Optional[List[Delivery]]:
        found = admin.webhook_deliveries(project, webhook_id)
        return found if len(found) >= at_least else None

    return check


def test_a_delivery_from_creation_to_deletion(server: Server, admin: Client, project: Project) -> None:
    svc = Client(server.url, api_key=project.service_key)
    ann = Client(server.url, api_key=project.reviewer_keys[0])
    got: List[Any] = []
    with receiving() as httpd:
        hook = admin.create_webhook(project.name, url(httpd), events=["item.resolved"])
        httpd.RequestHandlerClass = make_handler(hook["secret"], got.append)
        hook_id = hook["id"]
        assert hook["secret"].startswith("whsec_")
        assert (hook["url"], hook["events"], hook["enabled"], hook["failing"]) == (
            url(httpd),
            ["item.resolved"],
            True,
            False,
        )
        stored = admin.webhook(project.name, hook_id)
        # The server's worker may already have passed over events the endpoint does not
        # want (its own webhook.created), so the cursor only ever moves forward.
        assert "secret" not in stored and stored["cursor"] >= hook["cursor"]
        assert [h["id"] for h in admin.webhooks(project.name)] == [hook_id]

        # m1 is decided automatically (item.decided: not an event it wants); m2 goes to
        # review, and a reviewer's answer resolves it (item.resolved).
        svc.submit(project.name, [item(1, 0.99), item(2, 0.5)])
        assert ann.work(project.name, lambda task: "ham") == 1
        event = eventually(lambda: got[0] if got else None, "the delivery of m2's item.resolved")
        assert (event["type"], event["external_id"]) == ("item.resolved", "m2")
        assert (event["data"]["label"], event["data"]["source"]) == ("ham", "human")
        [first] = eventually(deliveries(admin, project.name, hook_id, 1), "the attempt's record")
        assert (first["outcome"], first["status"], first["type"], first["event_seq"]) == (
            "delivered",
            204,
            "item.resolved",
            event["seq"],
        )
        assert admin.webhook(project.name, hook_id)["cursor"] >= event["seq"]

        # A replay sends it again with the same webhook-id: the receiver takes it once.
        replayed = admin.replay_webhook(project.name, hook_id, from_seq=event["seq"])
        assert replayed["cursor"] == event["seq"] - 1
        again, _ = eventually(deliveries(admin, project.name, hook_id, 2), "the replayed attempt")
        assert (again["event_seq"], again["message_id"], again["outcome"]) == (
            event["seq"],
            first["message_id"],
            "delivered",
        )
        assert got == [event]
        assert [d["id"] for d in admin.webhook_deliveries(project.name, hook_id, limit=1)] == [again["id"]]

    # A rotation: for a while each delivery carries two signatures, one for each secret.
    rotated = admin.rotate_webhook_secret(project.name, hook_id)
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != hook["secret"]
    assert rotated["previous_secret_until"] is not None
    requests: List[Request] = []
    with receiving(recorder(requests)) as rec:
        moved = admin.update_webhook(project.name, hook_id, url=url(rec))
        assert (moved["url"], moved["enabled"]) == (url(rec), True)
        svc.submit(project.name, [item(3, 0.4)])
        assert ann.work(project.name, lambda task: "spam") == 1
        headers, body = eventually(lambda: requests[0] if requests else None, "the delivery of m3")
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (hook["secret"], rotated["secret"]):
        delivered = verify(headers, body, secret)
        assert (delivered["type"], delivered["external_id"], delivered["data"]["label"]) == (
            "item.resolved",
            "m3",
            "spam",
        )
    with pytest.raises(WebhookVerificationError):
        verify(headers, body, "whsec_" + "A" * 32)

    assert admin.update_webhook(project.name, hook_id, enabled=False)["enabled"] is False
    admin.delete_webhook(project.name, hook_id)
    assert admin.webhooks(project.name) == []
    with pytest.raises(FlywheelError) as e:
        admin.webhook(project.name, hook_id)
    assert (e.value.status, e.value.code) == (404, "not_found")

    # Every change is in the event log, and no secret is.
    log = list(admin.events(project.name))
    kinds = [e["kind"] for e in log if e["kind"].startswith("webhook.")]
    for kind in ("webhook.created", "webhook.replayed", "webhook.rotated", "webhook.updated", "webhook.deleted"):
        assert kind in kinds
    text = json.dumps(log)
    assert hook["secret"] not in text and rotated["secret"] not in text


def test_what_the_webhook_routes_refuse(server: Server, admin: Client, project: Project) -> None:
    with pytest.raises(FlywheelError) as e:
        admin.create_webhook(project.name, "ftp://127.0.0.1/hook", events=["*"])
    assert (e.value.status, e.value.code, e.value.field) == (422, "invalid", "url")
    with pytest.raises(FlywheelError) as e:
        admin.create_webhook(project.name, "http://127.0.0.1:9/hook", events=["no.such.kind"])
    assert (e.value.status, e.value.code) == (422, "invalid")
    assert e.value.field is not None and e.value.field.startswith("events")
    with pytest.raises(TypeError):  # one pattern as a string would be sent as its letters
        admin.create_webhook(project.name, "http://127.0.0.1:9/hook", events="item.resolved")
    with pytest.raises(FlywheelError) as e:  # webhooks are an admin's
        Client(server.url, api_key=project.service_key).webhooks(project.name)
    assert (e.value.status, e.value.code) == (403, "forbidden")
    with pytest.raises(FlywheelError) as e:
        admin.replay_webhook(project.name, 10**9, from_seq=1)
    assert (e.value.status, e.value.code) == (404, "not_found")
    assert admin.webhooks(project.name) == []
