"""The admin helpers: projects and policies (check, back-test, versions), reviewers and
keys, holds, gold, the built-in model, the figures."""

import secrets
from typing import List

import pytest

from conftest import POLICY, Project, Server, item
from flywheel import Client, FlywheelError
from flywheel.models import GoldItem


def test_projects_and_policies(admin: Client, project: Project) -> None:
    assert admin.health() == {"status": "ok"}
    assert admin.me()["kind"] == "admin"
    assert project.name in [p["name"] for p in admin.projects()]
    got = admin.project(project.name)
    assert (got["labels"], got["policy_version"]) == (["ham", "spam"], 1)

    stricter = {**POLICY, "rules": [{**POLICY["rules"][0], "when": "confidence >= 0.99"}, POLICY["rules"][1]]}
    checked = admin.check_policy(project.name, stricter)
    assert checked["valid"] and {"queue": "standard", "tier": 1} in checked["queues"]
    report = admin.backtest(project.name, stricter, window=100)
    assert isinstance(report, dict) and report  # nothing labelled yet, but a report
    assert admin.set_policy(project.name, stricter) == 2
    assert admin.project(project.name)["policy"]["rules"][0]["when"] == "confidence >= 0.99"


def test_reviewers_keys_and_holds(server: Server, admin: Client, project: Project) -> None:
    name = f"{project.name}-r0"
    account = next(a for a in admin.reviewers() if a["name"] == name)
    assert (account["tiers"], account["projects"], account["has_password"]) == ([1], [project.name], False)
    updated = admin.update_reviewer(name, tiers=[1, 2], password="correct horse battery")
    assert updated["tiers"] == [1, 2] and updated["has_password"]

    new = admin.reviewer_key(name)
    me = Client(server.url, api_key=new["api_key"]).me()
    assert (me["kind"], me.get("name")) == ("reviewer", name)
    admin.revoke_key(new["hash"])
    revoked = next(k for k in admin.keys() if k["hash"] == new["hash"])
    assert revoked.get("revoked_at")
    with pytest.raises(FlywheelError) as e:
        Client(server.url, api_key=new["api_key"]).me()
    assert e.value.status == 401

    Client(server.url, api_key=project.service_key).submit(project.name, [item(1, 0.5)])
    admin.hold(project.name, name, "spot check")
    records = {r["name"]: r for r in admin.project_reviewers(project.name)}
    assert records[name]["held"] and records[name].get("held_reason") == "spot check"
    held = Client(server.url, api_key=project.reviewer_keys[0])
    with pytest.raises(FlywheelError) as e:
        held.claim(project.name)
    assert (e.value.status, e.value.code) == (403, "reviewer_held")
    assert admin.release(project.name, name) == {"released": name}
    assert held.claim(project.name) is not None

    # Deactivated, the reviewer's key is refused; reactivated, it works again.
    assert admin.update_reviewer(name, active=False)["active"] is False
    with pytest.raises(FlywheelError) as e:
        held.me()
    assert e.value.status == 401
    assert admin.update_reviewer(name, active=True)["active"] is True
    assert held.me()["name"] == name


def test_gold_is_added_once(admin: Client, project: Project) -> None:
    gold = [{**item(i, 0.5), "external_id": f"g{i}", "label": "spam" if i % 2 else "ham"} for i in range(5)]
    assert admin.add_gold(project.name, gold, batch_size=2) == 5
    assert admin.add_gold(project.name, gold) == 0  # an external_id already stored is skipped
    with pytest.raises(FlywheelError) as e:
        admin.add_gold(project.name, [{**gold[0], "external_id": "g9", "label": "eggs"}])
    assert (e.value.code, e.value.field) == ("invalid", "items[0].label")


def test_figures_and_the_built_in_model(server: Server, admin: Client) -> None:
    name = f"model-{secrets.token_hex(3)}"
    admin.create_project(name, ["ham", "spam"], {**POLICY, "model": {"enabled": True}})
    svc = Client(server.url, api_key=admin.create_key([name])["api_key"])
    svc.submit(name, [item(i, 0.99 if i % 2 else 0.01, "WIN cash" if i % 2 else "hello mum") for i in range(6)])
    assert svc.model(name)["examples_seen"] == 0  # auto decisions are never trained on
    assert isinstance(admin.train(name)["version"], int)
    assert "examples_used" in admin.retrain(name)
    scored = svc.predict(name, [{"payload": {"text": "WIN cash now"}}])
    assert isinstance(scored, dict) and scored
    assert isinstance(admin.monitors(name)["monitors"], list)
    agreement = admin.agreement(name)
    assert (agreement["label_mode"], agreement["answers"], agreement["labels"]) == ("single", 0, ["ham", "spam"])
    detail = admin.item(name, "m1")
    assert detail["decisions"][0]["outcome"] == "auto" and detail["resolution"]["label"] == "spam"  # type: ignore[index]
    assert [e["kind"] for e in detail["events"]] == ["item.decided"]
    stats = svc.stats(name)
    assert (stats["items"], stats["auto"], stats["automation_rate"]) == (6, 6, 1.0)


def test_search_and_override(admin: Client, project: Project) -> None:
    admin.submit(project.name, [item(101, 0.5, "a FREE cruise awaits"), item(102, 0.5, "lunch at noon")])
    page = admin.search_items(project.name, "free cruise")
    assert [i["external_id"] for i in page["items"]] == ["m101"]
    assert page["items"][0]["open_tasks"] == 1
    with pytest.raises(FlywheelError) as e:
        admin.search_items(project.name, state="stuck")
    assert (e.value.status, e.value.field) == (400, "state")

    done = admin.override_item(project.name, "m101", label="spam", reason="obvious spam")
    resolution = done.get("resolution")
    assert resolution is not None and resolution["method"] == "override" and done["closed_tasks"]
    resolved = admin.search_items(project.name, state="resolved", label="spam")
    assert "m101" in [i["external_id"] for i in resolved["items"]]
    moved = admin.override_item(project.name, "m102", queue="standard", tier=2, reason="needs a lead")
    assert moved["task_id"] and len(moved["closed_tasks"]) == 1


def test_gold_of_a_multi_label_project_is_given_as_labels(admin: Client) -> None:
    name = f"multigold-{secrets.token_hex(3)}"
    admin.create_project(name, ["hate", "spam", "violence"], {"rules": []}, label_mode="multi")
    gold: List[GoldItem] = [
        {"external_id": "g1", "payload": {"text": "a"}, "labels": ["violence", "hate"]},
        {"external_id": "g2", "payload": {"text": "b"}, "labels": []},
    ]
    assert admin.add_gold(name, gold) == 2
    with pytest.raises(FlywheelError) as e:
        admin.add_gold(name, [{"external_id": "g3", "payload": {}, "labels": ["hate", "eggs"]}])
    assert (e.value.code, e.value.field) == ("invalid", "items[0].labels[1]")
