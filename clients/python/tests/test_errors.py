"""Refusals become `FlywheelError` with the API's status, code and field."""

import pytest

from conftest import Project, Server, item
from flywheel import Client, FlywheelError, TransportError
from flywheel.errors import FlywheelError as Base


def refused(call: object) -> FlywheelError:
    with pytest.raises(FlywheelError) as e:
        call()  # type: ignore[operator]
    return e.value


def test_errors_mirror_the_error_body(server: Server, admin: Client, project: Project) -> None:
    svc = Client(server.url, api_key=project.service_key)
    bad = item(1, 0.5)
    bad["prediction"]["scores"] = {"spam": 0.5, "eggs": 0.5}
    e = refused(lambda: svc.submit(project.name, [item(0, 0.9), bad]))
    assert (e.status, e.code) == (422, "invalid")
    assert e.field is not None and e.field.startswith("items[1].prediction.scores")
    assert svc.stats(project.name)["items"] == 0  # the whole batch was refused

    e = refused(lambda: svc.stats("no-such-project"))
    assert (e.status, e.code, e.field) == (404, "not_found", None)

    e = refused(lambda: Client(server.url, api_key="not-a-key").stats(project.name))
    assert (e.status, e.code) == (401, "unauthorized")

    e = refused(lambda: svc.claim(project.name))  # a service key is not a reviewer
    assert (e.status, e.code) == (403, "forbidden")

    e = refused(lambda: admin.create_project(project.name, ["a", "b"], {"rules": []}))
    assert (e.status, e.code) == (409, "project_exists")

    policy = {"rules": [{"name": "r", "when": "confidence >=", "action": "auto"}]}
    e = refused(lambda: admin.check_policy(project.name, policy))
    assert (e.status, e.code, e.field) == (422, "invalid", "rules[0].when")
    assert "422 invalid" in str(e) and "rules[0].when" in str(e)
    assert admin.check_policy(project.name, {"rules": [{"name": "r", "when": "true", "action": "auto"}]})["valid"]


def test_a_label_the_project_does_not_have(server: Server, project: Project) -> None:
    Client(server.url, api_key=project.service_key).submit(project.name, [item(1, 0.5)])
    ann = Client(server.url, api_key=project.reviewer_keys[0])
    task = ann.claim(project.name)
    assert task is not None
    e = refused(lambda: ann.answer(task, "eggs"))
    assert (e.status, e.code, e.field) == (422, "invalid", "label")
    with pytest.raises(ValueError):
        ann.answer(task, "ham", skip="both")


def test_no_server_is_a_transport_error() -> None:
    from flywheel import Retry

    fw = Client("http://127.0.0.1:9", api_key="k", retry=Retry(attempts=2, backoff=0.01))
    e = refused(lambda: fw.stats("p"))
    assert isinstance(e, TransportError) and isinstance(e, Base)
    assert (e.status, e.code) == (0, "transport")
