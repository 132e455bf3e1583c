"""The synchronous client. `AsyncClient` (``aclient.py``) has the same methods, awaited."""

import os
import threading
import time
from typing import Any, Callable, Iterable, List, Mapping, Optional, Sequence, Union, cast

import httpx

from . import _common as c
from ._common import Call, GoldLike, Id, ItemLike, PathLike, PredictLike, Retry, Verdict
from .errors import FlywheelError, TransportError
from .feed import Feed
from .models import (
    JSON,
    Account,
    Agreement,
    AmendResult,
    BacktestOut,
    Decision,
    Delivery,
    Event,
    Health,
    Heartbeat,
    ImportReport,
    ItemDetail,
    ItemSearchPage,
    KeyCreated,
    KeyRecord,
    Label,
    Me,
    NewKey,
    OverrideResult,
    PolicyChecked,
    PolicyStored,
    Project,
    ProjectCreated,
    ProjectSummary,
    Queues,
    Released,
    ReviewerCreated,
    ReviewerRecord,
    ReviewResult,
    Stats,
    Task,
    Webhook,
    WebhookWithSecret,
    Workload,
)

__all__ = ["Client"]


class Client:
    """A Flywheel server, as one API key sees it.

    ``Client("http://127.0.0.1:7700", api_key=KEY)``; the key may also come from
    ``FLYWHEEL_API_KEY``. Idempotent requests (item submissions, answers, reads) are
    retried on transient failures per ``retry``; every refused request raises
    `FlywheelError` with the API's ``code``, ``field`` and ``status``.
    """

    def __init__(
        self,
        base_url: str,
        api_key: Optional[str] = None,
        *,
        timeout: float = 60.0,
        retry: Optional[Retry] = None,
        http: Optional[httpx.Client] = None,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("FLYWHEEL_API_KEY")
        headers = {"authorization": f"Bearer {key}"} if key else {}
        self.retry = retry or Retry()
        self._timeout = timeout
        self._http = http or httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ sending

    def _send(self, call: Call) -> httpx.Response:
        attempts = self.retry.attempts if call.endpoint.idempotent else 1
        timeout = httpx.Timeout(self._timeout, read=self._timeout + call.extra_timeout)
        for attempt in range(attempts):
            response: Optional[httpx.Response] = None
            try:
                response = self._http.request(
                    call.endpoint.method,
                    call.path,
                    params=call.params or None,
                    json=call.json,
                    content=call.content,
                    headers=call.headers or None,
                    timeout=timeout,
                )
            except httpx.TransportError as e:
                error: FlywheelError = TransportError(e)
            else:
                if response.is_success:
                    return response
                error = FlywheelError.from_response(response)
            if not error.retryable or attempt + 1 == attempts:
                raise error
            time.sleep(self.retry.delay(attempt, response))
        raise AssertionError("unreachable")  # pragma: no cover

    def _json(self, call: Call) -> Any:
        return self._send(call).json()

    # ------------------------------------------------------------------ items

    def submit(self, project: str, items: Iterable[ItemLike], *, batch_size: int = c.DEFAULT_BATCH) -> List[Decision]:
        """Decides ``items`` (any iterable, read lazily) in requests of ``batch_size``; the
        decisions come back in input order. An ``external_id`` already stored gets its first
        decision back with ``duplicate: True``, so a retried or re-run submission is safe."""
        decisions: List[Decision] = []
        for batch in c.batches(items, batch_size):
            decisions.extend(self._json(c.call("submit", project=project, json={"items": batch}))["decisions"])
        return decisions

    def submit_df(
        self,
        project: str,
        dataframe: Any,
        id_column: str,
        text_column: str,
        score_columns: Union[Sequence[str], Mapping[str, str]] = (),
        *,
        model: str = "dataframe",
        version: Optional[str] = None,
        attribute_columns: Sequence[str] = (),
        batch_size: int = c.DEFAULT_BATCH,
    ) -> List[Decision]:
        """`submit` for a pandas DataFrame (``pip install 'flywheel-hitl[pandas]'``): one item
        per row, ``payload.text`` from ``text_column``, the model's scores from
        ``score_columns`` (columns named after the labels, or a mapping label → column)."""
        rows = c.frame_items(
            dataframe,
            id_column,
            text_column,
            score_columns,
            model=model,
            version=version,
            attribute_columns=attribute_columns,
        )
        return self.submit(project, rows, batch_size=batch_size)

    def item(self, project: str, external_id: str) -> ItemDetail:
        """An item's whole story: decisions, tasks, reviews, resolution, events."""
        return cast(ItemDetail, self._json(c.call("item", project=project, external_id=external_id)))

    def search_items(
        self,
        project: str,
        q: Optional[str] = None,
        *,
        label: Optional[str] = None,
        reviewer: Optional[str] = None,
        state: Optional[str] = None,
        since: Optional[str] = None,
        until: Optional[str] = None,
        cursor: Optional[int] = None,
        limit: Optional[int] = None,
    ) -> ItemSearchPage:
        """One page of a project's items, newest first, that match every condition given:
        ``q`` (text in the external id or the payload, any case), the resolved ``label``, a
        ``reviewer`` who answered, ``state`` (open, resolved, unresolved), received in
        ``[since, until)``. Pass the page's ``next_cursor`` as ``cursor`` for the next."""
        params = {
            "q": q,
            "label": label,
            "reviewer": reviewer,
            "state": state,
            "since": since,
            "until": until,
            "cursor": cursor,
            "limit": limit,
        }
        return cast(ItemSearchPage, self._json(c.call("search_items", project=project, params=params)))

    def override_item(
        self,
        project: str,
        external_id: str,
        *,
        reason: str,
        label: Optional[str] = None,
        labels: Optional[Sequence[str]] = None,
        fields: Optional[JSON] = None,
        queue: Optional[str] = None,
        tier: Optional[int] = None,
        priority: Optional[int] = None,
    ) -> OverrideResult:
        """Overrides an item (admin), with a reason: with ``label`` (``labels``, a set, in a
        multi-label project; and ``fields``) it is resolved as a human resolution, method
        ``override``; with ``queue`` and ``tier`` its work is re-routed there. Its open tasks
        are closed and their leases cancelled."""
        action = "resolve" if label is not None or labels is not None else "reroute"
        json = c.drop_none(
            {
                "action": action,
                "reason": reason,
                "label": label,
                "labels": None if labels is None else list(labels),
                "fields": fields,
                "queue": queue,
                "tier": tier,
                "priority": priority,
            }
        )
        req = c.call("override_item", project=project, external_id=external_id, json=json)
        return cast(OverrideResult, self._json(req))

    def add_gold(self, project: str, items: Iterable[GoldLike], *, batch_size: int = c.DEFAULT_BATCH) -> int:
        """Adds gold items (known answers reviewers are scored against); returns how many were new."""
        return sum(
            int(self._json(c.call("add_gold", project=project, json={"items": b}))["added"])
            for b in c.batches(items, batch_size)
        )

    # ------------------------------------------------------------------ feeds

    def labels(
        self,
        project: str,
        *,
        after: int = 0,
        follow: bool = False,
        limit: int = c.MAX_PAGE,
        poll_interval: float = 1.0,
    ) -> Feed[Label]:
        """The label feed from ``after``: an iterator that keeps its position in ``.cursor``;
        with ``follow=True`` it waits for new labels instead of ending."""
        c.page_limit(limit)

        def fetch(cursor: int) -> List[Label]:
            page = self._json(c.call("labels", project=project, params={"after": cursor, "limit": limit}))
            return cast(List[Label], page["labels"])

        return Feed(fetch, lambda e: e["cursor"], after=after, follow=follow, poll_interval=poll_interval)

    def events(
        self,
        project: Optional[str] = None,
        *,
        after: int = 0,
        follow: bool = False,
        limit: int = c.MAX_PAGE,
        poll_interval: float = 1.0,
    ) -> Feed[Event]:
        """The event log (of one project, or of everything) from ``after``, as `labels` does."""
        c.page_limit(limit)

        def fetch(cursor: int) -> List[Event]:
            params = {"after": cursor, "limit": limit}
            req = (
                c.call("project_events", project=project, params=params)
                if project is not None
                else c.call("events", params=params)
            )
            return cast(List[Event], self._json(req)["events"])

        return Feed(fetch, lambda e: e["seq"], after=after, follow=follow, poll_interval=poll_interval)

    def stats(self, project: str) -> Stats:
        return cast(Stats, self._json(c.call("stats", project=project)))

    def queues(self, project: str) -> Queues:
        """Open tasks per queue; a reviewer's key may read it (`stats` is the admin's and
        the service key's)."""
        return cast(Queues, self._json(c.call("queues", project=project)))

    def workload(self, project: str, *, since: Optional[str] = None, until: Optional[str] = None) -> Workload:
        """Where reviewer time went in ``[since, until)`` (RFC 3339 or epoch ms; default the
        last 24 h): rows by failure category, final label, queue, tier and reviewer, and the
        findings that stand out."""
        req = c.call("workload", project=project, params={"since": since, "until": until})
        return cast(Workload, self._json(req))

    def export(
        self,
        project: str,
        path: PathLike,
        format: str = "jsonl",
        *,
        since: Optional[str] = None,
        until: Optional[str] = None,
        source: Optional[str] = None,
    ) -> int:
        """Streams the project's export (``jsonl``, ``csv`` or ``label-studio``) to ``path``
        chunk by chunk, never holding it in memory; returns the bytes written."""
        req = c.call(
            "export", project=project, params={"format": format, "since": since, "until": until, "source": source}
        )
        written = 0
        with self._http.stream(req.endpoint.method, req.path, params=req.params) as response:
            if not response.is_success:
                response.read()
                raise FlywheelError.from_response(response)
            with open(path, "wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
                    written += len(chunk)
        return written

    def import_file(self, project: str, format: str, path: PathLike, *, as_: Optional[str] = None) -> ImportReport:
        """Imports a file — a Label Studio export (``format="label-studio"``) or a JSON lines
        export (``"jsonl"``) — read from ``path`` as it is sent. Its annotations become the
        items' human labels (``as_="history"``, the server's default) or gold items
        (``as_="gold"``). A bad row refuses the whole file: `FlywheelError` with its
        ``line`` and ``field``, and nothing is stored. Sent once (not retried)."""
        req = c.import_call(project, format, path, as_)
        req.content = c.file_chunks(path)
        return cast(ImportReport, self._json(req))

    # ------------------------------------------------------------------ review work

    def claim(self, project: str, *, queue: Optional[str] = None, wait_ms: int = 0) -> Optional[Task]:
        """Leases the next task, or ``None`` when there is nothing to do (after waiting up to
        ``wait_ms`` for work to arrive)."""
        response = self._send(c.claim_call(project, queue, wait_ms))
        return None if response.status_code == 204 else cast(Task, response.json())

    def answer(
        self,
        task: Task,
        label: Optional[Verdict] = None,
        *,
        labels: Optional[Sequence[str]] = None,
        escalate: Optional[str] = None,
        skip: Optional[str] = None,
        note: Optional[str] = None,
        failure_category: Optional[str] = None,
        review_id: Optional[str] = None,
        next: Optional[str] = None,
        next_queue: Optional[str] = None,
        fields: Optional[JSON] = None,
    ) -> ReviewResult:
        """Answers a leased task with a label (``labels=[..]`` in a multi-label project, ``[]``
        for none of these; or ``escalate=reason`` / ``skip=reason``),
        with the project's answer ``fields`` (``{name: value}``) when it declares any.
        With ``next=project`` the reply's ``next`` is the reviewer's next task, leased in
        the same commit (``None`` when there is nothing to do)."""
        verdict = c.verdict(label, escalate, skip, labels)
        return cast(
            ReviewResult,
            self._json(
                c.answer_call(
                    task,
                    verdict,
                    note=note,
                    failure_category=failure_category,
                    review_id=review_id,
                    next=next,
                    next_queue=next_queue,
                    fields=fields,
                )
            ),
        )

    def amend(
        self,
        review_id: str,
        label: Optional[str] = None,
        *,
        labels: Optional[Sequence[str]] = None,
        reason: Optional[str] = None,
        amend_id: Optional[str] = None,
        fields: Optional[JSON] = None,
    ) -> AmendResult:
        """Changes the label of one of your answers (its ``review_id``, as the answer's
        result gives it). Within the policy's undo window and while the task is open the
        label is replaced (``undone``); once the task has closed the item goes back to
        adjudication one tier up with ``reason`` (``amended``). 409 ``undo_expired`` past
        the window with the task still open. ``fields`` replace the answer's fields (checked
        as an answer's are: 422 naming ``fields.<name>``)."""
        call = c.amend_call(review_id, label, reason=reason, amend_id=amend_id, labels=labels, fields=fields)
        return cast(AmendResult, self._json(call))

    def heartbeat(self, task: Task) -> Heartbeat:
        """Extends the task's lease (409 ``lease_lost`` when it is gone)."""
        json = {"lease_id": task["lease_id"]}
        return cast(Heartbeat, self._json(c.call("heartbeat", task_id=task["task_id"], json=json)))

    def work(
        self,
        project: str,
        review: Callable[[Task], Verdict],
        *,
        queue: Optional[str] = None,
        wait_ms: int = 0,
        max_tasks: Optional[int] = None,
        heartbeat_every: Optional[float] = None,
    ) -> int:
        """A scripted reviewer: claims tasks and answers each with ``review(task)`` — a label,
        `Escalate` or `Skip` — leasing the next in the same request, until there is nothing
        to do (after ``wait_ms``) or ``max_tasks`` are answered. Returns how many were
        answered. A lost lease (the reviewer was too slow) moves on to the next task.
        With ``heartbeat_every`` (seconds, well under the policy's ``lease_seconds``) the
        lease is extended in the background while ``review`` thinks (a slow model)."""
        done = 0
        task = self.claim(project, queue=queue, wait_ms=wait_ms)
        while task is not None and (max_tasks is None or done < max_tasks):
            last = max_tasks is not None and done + 1 == max_tasks
            try:
                result = self.answer(
                    task,
                    self._review(review, task, heartbeat_every),
                    next=None if last else project,
                    next_queue=None if last else queue,
                )
            except FlywheelError as e:
                if e.code != "lease_lost":
                    raise
                task = self.claim(project, queue=queue, wait_ms=wait_ms)
                continue
            done += 1
            if result.get("next_error"):
                raise c.error_detail(cast(JSON, result["next_error"]), 403)
            task = result.get("next")
            if task is None and not last:
                task = self.claim(project, queue=queue, wait_ms=wait_ms)
        return done

    def _review(self, review: Callable[[Task], Verdict], task: Task, heartbeat_every: Optional[float]) -> Verdict:
        """``review(task)``, heartbeating the lease from another thread meanwhile when asked."""
        if heartbeat_every is None:
            return review(task)
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(heartbeat_every):
                try:
                    self.heartbeat(task)
                except FlywheelError:
                    return  # the lease is gone: the answer will say so

        beating = threading.Thread(target=beat, name="flywheel-heartbeat", daemon=True)
        beating.start()
        try:
            return review(task)
        finally:
            stop.set()
            beating.join()

    # ------------------------------------------------------------------ projects and policies

    def health(self) -> Health:
        return cast(Health, self._json(c.call("health")))

    def me(self) -> Me:
        return cast(Me, self._json(c.call("me")))

    def create_project(
        self,
        name: str,
        labels: Sequence[str],
        policy: JSON,
        *,
        answer_fields: Optional[List[JSON]] = None,
        label_mode: Optional[str] = None,
    ) -> ProjectCreated:
        """Creates a project; ``answer_fields`` declares the typed fields its answers carry,
        ``label_mode="multi"`` makes an answer a set of labels (default ``"single"``)."""
        json = c.project_body(name, labels, policy, answer_fields, label_mode)
        return cast(ProjectCreated, self._json(c.call("create_project", json=json)))

    def projects(self) -> List[ProjectSummary]:
        return cast(List[ProjectSummary], self._json(c.call("projects")))

    def project(self, name: str) -> Project:
        return cast(Project, self._json(c.call("project", project=name)))

    def set_policy(self, project: str, policy: JSON) -> int:
        """Stores a new version of the project's policy (checked first); returns its version."""
        stored = cast(PolicyStored, self._json(c.call("set_policy", project=project, json=policy)))
        return stored["policy_version"]

    def check_policy(self, project: str, policy: JSON) -> PolicyChecked:
        """Checks a policy without storing it; a bad one raises `FlywheelError` naming the field."""
        return cast(PolicyChecked, self._json(c.call("check_policy", project=project, json=policy)))

    def backtest(self, project: str, policy: JSON, *, window: Optional[int] = None) -> BacktestOut:
        """Replays a policy, and the one in force (``current``), over the project's latest
        human-labelled items; nothing is stored."""
        json = c.drop_none({"policy": policy, "window": window})
        return cast(BacktestOut, self._json(c.call("backtest", project=project, json=json)))

    # ------------------------------------------------------------------ reviewers and keys

    def create_reviewer(
        self,
        name: str,
        tiers: Sequence[int],
        projects: Sequence[str],
        *,
        password: Optional[str] = None,
    ) -> ReviewerCreated:
        """A reviewer; the reply's ``api_key`` is shown once."""
        json = c.drop_none({"name": name, "tiers": list(tiers), "projects": list(projects), "password": password})
        return cast(ReviewerCreated, self._json(c.call("create_reviewer", json=json)))

    def reviewers(self) -> List[Account]:
        return cast(List[Account], self._json(c.call("reviewers")))

    def update_reviewer(
        self,
        name: str,
        *,
        tiers: Optional[Sequence[int]] = None,
        projects: Optional[Sequence[str]] = None,
        password: Optional[str] = None,
        active: Optional[bool] = None,
    ) -> Account:
        """Changes a reviewer's grants or password; ``active=False`` deactivates them (keys,
        sessions and password refused, leases cancelled), ``active=True`` reactivates them."""
        json = c.drop_none(
            {
                "tiers": list(tiers) if tiers is not None else None,
                "projects": list(projects) if projects is not None else None,
                "password": password,
                "active": active,
            }
        )
        return cast(Account, self._json(c.call("update_reviewer", name=name, json=json)))

    def reviewer_key(self, name: str, *, key_name: Optional[str] = None) -> NewKey:
        """Another key for a reviewer (shown once), named ``key_name`` if given."""
        json = c.drop_none({"name": key_name})
        return cast(NewKey, self._json(c.call("reviewer_key", name=name, json=json)))

    def project_reviewers(self, project: str) -> List[ReviewerRecord]:
        """Each reviewer's record in the project: answers, gold accuracy, agreement, hold."""
        return cast(List[ReviewerRecord], self._json(c.call("project_reviewers", project=project))["reviewers"])

    def hold(self, project: str, name: str, reason: str) -> None:
        self._send(c.call("hold", project=project, name=name, json={"reason": reason}))

    def release(self, project: str, name: str) -> Released:
        return cast(Released, self._json(c.call("release", project=project, name=name)))

    def create_key(self, projects: Sequence[str], *, scope: str = "service", name: Optional[str] = None) -> KeyCreated:
        """A service key for ``projects``, named ``name`` if given; the reply's ``api_key``
        is shown once."""
        json = c.drop_none({"scope": scope, "projects": list(projects), "name": name})
        return cast(KeyCreated, self._json(c.call("create_key", json=json)))

    def keys(self) -> List[KeyRecord]:
        return cast(List[KeyRecord], self._json(c.call("keys")))

    def revoke_key(self, key_hash: str) -> None:
        self._send(c.call("revoke_key", hash=key_hash))

    # ------------------------------------------------------------------ quality and the model

    def agreement(self, project: str) -> Agreement:
        """Agreement over the project's answers: a `SingleLabelAgreement`, or for a
        multi-label project a `MultiLabelAgreement` (``label_mode`` tells which)."""
        return cast(Agreement, self._json(c.call("agreement", project=project)))

    def model(self, project: str) -> JSON:
        return cast(JSON, self._json(c.call("model", project=project)))

    def train(self, project: str) -> JSON:
        return cast(JSON, self._json(c.call("train", project=project)))

    def retrain(self, project: str) -> JSON:
        return cast(JSON, self._json(c.call("retrain", project=project)))

    def predict(self, project: str, items: Sequence[PredictLike]) -> JSON:
        return cast(JSON, self._json(c.call("predict", project=project, json={"items": list(items)})))

    def monitors(self, project: str) -> JSON:
        return cast(JSON, self._json(c.call("monitors", project=project)))

    # ------------------------------------------------------------------ webhooks

    def create_webhook(
        self,
        project: str,
        url: str,
        events: Sequence[str],
        *,
        enabled: Optional[bool] = None,
    ) -> WebhookWithSecret:
        """A webhook endpoint for the event kinds ``events`` (``item.resolved``, a family
        ``task.*``, or ``*``); the reply's ``secret`` (``whsec_…``) is shown this once."""
        json = c.webhook_body(url, events, enabled)
        return cast(WebhookWithSecret, self._json(c.call("create_webhook", project=project, json=json)))

    def webhooks(self, project: str) -> List[Webhook]:
        return cast(List[Webhook], self._json(c.call("webhooks", project=project))["webhooks"])

    def webhook(self, project: str, webhook_id: Id) -> Webhook:
        return cast(Webhook, self._json(c.call("webhook", project=project, webhook_id=webhook_id)))

    def update_webhook(
        self,
        project: str,
        webhook_id: Id,
        *,
        url: Optional[str] = None,
        events: Optional[Sequence[str]] = None,
        enabled: Optional[bool] = None,
    ) -> Webhook:
        """Changes what is given; ``enabled=True`` after a 410 tries the next event at once."""
        json = c.webhook_body(url, events, enabled)
        return cast(Webhook, self._json(c.call("update_webhook", project=project, webhook_id=webhook_id, json=json)))

    def delete_webhook(self, project: str, webhook_id: Id) -> None:
        self._send(c.call("delete_webhook", project=project, webhook_id=webhook_id))

    def rotate_webhook_secret(self, project: str, webhook_id: Id) -> WebhookWithSecret:
        """A new secret (shown once); for 24 hours deliveries carry a signature with each."""
        req = c.call("rotate_webhook_secret", project=project, webhook_id=webhook_id)
        return cast(WebhookWithSecret, self._json(req))

    def replay_webhook(self, project: str, webhook_id: Id, from_seq: int) -> Webhook:
        """Delivers the project's events again from ``from_seq`` (a cursor move; the same
        ``webhook-id`` headers, so receivers that deduplicate skip what they have)."""
        req = c.call("replay_webhook", project=project, webhook_id=webhook_id, json={"from_seq": from_seq})
        return cast(Webhook, self._json(req))

    def webhook_deliveries(self, project: str, webhook_id: Id, *, limit: Optional[int] = None) -> List[Delivery]:
        """The endpoint's delivery attempts, newest first."""
        req = c.call("webhook_deliveries", project=project, webhook_id=webhook_id, params={"limit": limit})
        return cast(List[Delivery], self._json(req)["deliveries"])
