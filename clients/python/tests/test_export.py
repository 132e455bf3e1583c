"""Exports through `Client.export` (JSON lines, CSV, Label Studio) streamed to files, and
imports through `Client.import_file` of those files into other projects."""

import csv
import json
from pathlib import Path

import pytest

from conftest import Project, Server, item, new_project
from flywheel import Client, FlywheelError


def test_export_to_files_and_import_them(server: Server, admin: Client, project: Project, tmp_path: Path) -> None:
    svc = Client(server.url, api_key=project.service_key)
    svc.submit(project.name, [item(1, 0.99, "WIN now"), item(2, 0.5, "lunch?"), item(3, 0.01)])
    assert Client(server.url, api_key=project.reviewer_keys[0]).work(project.name, lambda task: "ham") == 1

    jsonl = tmp_path / "all.jsonl"
    assert svc.export(project.name, jsonl, "jsonl") == jsonl.stat().st_size
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["external_id"] for r in rows] == ["m1", "m2", "m3"]
    assert [(r["resolution"]["label"], r["resolution"]["source"]) for r in rows] == [
        ("spam", "auto"),
        ("ham", "human"),
        ("ham", "auto"),
    ]
    assert rows[0]["payload"] == {"text": "WIN now"}

    human = tmp_path / "human.jsonl"
    svc.export(project.name, human, "jsonl", source="human")
    assert [json.loads(line)["external_id"] for line in human.read_text().splitlines()] == ["m2"]
    svc.export(
        project.name, tmp_path / "none.jsonl", "jsonl", since="2000-01-01T00:00:00Z", until="2000-01-02T00:00:00Z"
    )
    assert (tmp_path / "none.jsonl").read_bytes() == b""

    table = tmp_path / "all.csv"
    svc.export(project.name, table, "csv")
    with open(table, newline="") as f:
        cells = list(csv.DictReader(f))
    assert [(r["external_id"], r["label"], r["source"]) for r in cells] == [
        ("m1", "spam", "auto"),
        ("m2", "ham", "human"),
        ("m3", "ham", "auto"),
    ]

    tasks_file = tmp_path / "tasks.json"
    svc.export(project.name, tasks_file, "label-studio")
    tasks = json.loads(tasks_file.read_text())
    assert [t["meta"]["external_id"] for t in tasks] == ["m1", "m2", "m3"]
    assert [len(t["annotations"]) for t in tasks] == [0, 1, 0]  # one answer, by a person

    with pytest.raises(FlywheelError) as e:
        svc.export(project.name, tmp_path / "bad", "xml")
    assert (e.value.status, e.value.field) == (400, "format")
    assert not (tmp_path / "bad").exists()  # nothing is written for a refused export

    # The JSON lines into another project: items decided by its policy, the human label kept.
    other = new_project(admin)
    into = Client(server.url, api_key=other.service_key)
    report = into.import_file(other.name, "jsonl", jsonl)
    assert report == {"rows": 3, "items": 3, "duplicates": 0, "labels": 1, "gold": 0}
    labels = {x["external_id"]: (x["label"], x["source"]) for x in into.labels(other.name)}
    assert labels == {"m1": ("spam", "auto"), "m2": ("ham", "human"), "m3": ("ham", "auto")}
    again = into.import_file(other.name, "jsonl", str(jsonl))  # twice changes nothing
    assert (again["items"], again["duplicates"], again["labels"]) == (0, 3, 0)

    # The Label Studio tasks as gold: the annotated one becomes a gold item.
    third = new_project(admin)
    gold = admin.import_file(third.name, "label-studio", tasks_file, as_="gold")
    assert gold == {"rows": 3, "items": 2, "duplicates": 0, "labels": 0, "gold": 1}


def test_a_bad_row_refuses_the_whole_file(server: Server, project: Project, tmp_path: Path) -> None:
    svc = Client(server.url, api_key=project.service_key)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"external_id": "a", "payload": {"text": "x"}}) + "\n" + json.dumps({"payload": {}}))
    with pytest.raises(FlywheelError) as e:
        svc.import_file(project.name, "jsonl", bad)
    assert (e.value.status, e.value.code, e.value.line) == (422, "invalid", 2)
    assert e.value.field == "line 2: external_id"
    assert svc.stats(project.name)["items"] == 0
    with pytest.raises(FlywheelError) as e:
        svc.import_file(project.name, "parquet", bad)
    assert e.value.field == "format"
    with pytest.raises(FileNotFoundError):
        svc.import_file(project.name, "jsonl", tmp_path / "missing.jsonl")
