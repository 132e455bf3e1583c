"""What the sync and the async client share: building requests from the endpoint table,
the retry schedule, batching, and the answers a scripted reviewer gives. Neither client
holds logic of its own beyond sending and waiting."""

import itertools
import os
import random
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union
from urllib.parse import quote

import httpx

from ._endpoints import ENDPOINTS, Endpoint
from .errors import FlywheelError
from .models import JSON, GoldItem, Item, PredictItem, Task

T = TypeVar("T")

#: The server takes at most this many items in one request.
MAX_BATCH = 10_000
#: Items per request when the caller does not say.
DEFAULT_BATCH = 1_000
#: Largest page of a feed.
MAX_PAGE = 1_000
#: Longest long poll of a claim, in milliseconds.
MAX_WAIT_MS = 30_000
#: Bytes read from a file at a time while it is sent (an import).
FILE_CHUNK = 1 << 20

#: A file on disk: a path as text or a `pathlib.Path`.
PathLike = Union[str, "os.PathLike[str]"]

Id = Union[int, str]

# What the methods that send items take: the typed dictionaries, or any mapping of that
# shape (items built at run time); the server checks each field and names the one at fault.
ItemLike = Union[Item, Mapping[str, Any]]
GoldLike = Union[GoldItem, Mapping[str, Any]]
PredictLike = Union[PredictItem, Mapping[str, Any]]


@dataclass(frozen=True)
class Retry:
    """How transient failures (no answer, 429, 5xx) of idempotent requests are retried:
    up to ``attempts`` tries in all, waiting ``backoff * 2**n`` seconds (at most ``max_backoff``,
    less a random part of up to half) or what the server's ``Retry-After`` says."""

    attempts: int = 6
    backoff: float = 0.25
    max_backoff: float = 8.0

    def delay(self, attempt: int, response: Optional[httpx.Response]) -> float:
        if response is not None:
            after = response.headers.get("retry-after")
            if after is not None:
                try:
                    return min(float(after), self.max_backoff * 4)
                except ValueError:
                    pass
        cap = min(self.max_backoff, self.backoff * (2**attempt))
        return random.uniform(cap / 2, cap)


@dataclass
class Call:
    """One request, ready to send."""

    endpoint: Endpoint
    path: str
    params: Dict[str, Any] = field(default_factory=dict)
    json: Any = None
    #: A body sent as it is (a file's chunks), with its ``headers``, instead of ``json``.
    content: Any = None
    headers: Dict[str, str] = field(default_factory=dict)
    #: Extra read time (a long poll waits on the server before it answers).
    extra_timeout: float = 0.0


def call(name: str, /, *, json: Any = None, params: Optional[Mapping[str, Any]] = None, **path: Id) -> Call:
    """A `Call` of the endpoint ``name`` with its path parameters filled in (each quoted)."""
    ep = ENDPOINTS[name]
    url = ep.path.format(**{k: quote(str(v), safe="") for k, v in path.items()})
    query = {k: v for k, v in (params or {}).items() if v is not None}
    unknown = set(query) - set(ep.query)
    if unknown:  # a bug in this package, not the caller's
        raise AssertionError(f"{name} does not take {sorted(unknown)}")
    if isinstance(json, dict):
        extra = set(json) - set(ep.sends)
        if extra and ep.body != "object":
            raise AssertionError(f"{name} does not send {sorted(extra)}")
    return Call(ep, url, query, json)


def batches(items: Iterable[T], size: int) -> Iterator[List[T]]:
    """``items`` in lists of at most ``size``, read lazily (an iterable of any length)."""
    if not 1 <= size <= MAX_BATCH:
        raise ValueError(f"batch_size is 1 to {MAX_BATCH}, got {size}")
    it = iter(items)
    while True:
        chunk = list(itertools.islice(it, size))
        if not chunk:
            return
        yield chunk


def drop_none(d: Mapping[str, Any]) -> JSON:
    return {k: v for k, v in d.items() if v is not None}


def page_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit is 1 to {MAX_PAGE}, got {limit}")
    return limit


def claim_call(project: str, queue: Optional[str], wait_ms: int) -> Call:
    if not 0 <= wait_ms <= MAX_WAIT_MS:
        raise ValueError(f"wait_ms is 0 to {MAX_WAIT_MS}, got {wait_ms}")
    c = call("claim", project=project, json=drop_none({"queue": queue, "wait_ms": wait_ms or None}))
    c.extra_timeout = wait_ms / 1000
    return c


@dataclass(frozen=True)
class Escalate:
    """A scripted reviewer's answer: send the task one tier up, saying why."""

    reason: str


@dataclass(frozen=True)
class Skip:
    """A scripted reviewer's answer: give the task back for someone else, saying why."""

    reason: str


@dataclass(frozen=True)
class Labels:
    """A multi-label project's answer: the set of labels present (empty: none of these)."""

    labels: Tuple[str, ...]


#: What a reviewer function returns: a label (a set of `Labels` in a multi-label
#: project), or an escalation or a skip.
Verdict = Union[str, Labels, Escalate, Skip]


def verdict(
    label: Optional[Verdict],
    escalate: Optional[str],
    skip: Optional[str],
    labels: Optional[Sequence[str]] = None,
) -> Verdict:
    """The one answer among a label, ``labels=[..]``, ``escalate=reason`` and ``skip=reason``."""
    given = [v for v in (label, labels, escalate, skip) if v is not None]
    if len(given) != 1:
        raise ValueError("answer with exactly one of a label, labels=[..], escalate=reason or skip=reason")
    if escalate is not None:
        return Escalate(escalate)
    if skip is not None:
        return Skip(skip)
    if labels is not None:
        return Labels(tuple(labels))
    assert label is not None
    return label


def project_body(
    name: str,
    labels: Sequence[str],
    policy: JSON,
    answer_fields: Optional[List[JSON]],
    label_mode: Optional[str],
) -> JSON:
    """A project's creation request (the mode and the fields only when given)."""
    return drop_none(
        {
            "name": name,
            "labels": list(labels),
            "label_mode": label_mode,
            "policy": policy,
            "answer_fields": answer_fields,
        }
    )


def amend_call(
    review_id: str,
    label: Optional[str],
    *,
    reason: Optional[str],
    amend_id: Optional[str],
    labels: Optional[Sequence[str]] = None,
    fields: Optional[JSON] = None,
) -> Call:
    """A change of the label (``labels`` in a multi-label project) — and, with ``fields``,
    the fields — of the caller's answer ``review_id``. ``amend_id`` (a fresh UUID when not
    given) is the idempotency key, so a retry of this call is stored once."""
    body: JSON = {
        "amend_id": amend_id or str(uuid.uuid4()),
        "label": label,
        "labels": None if labels is None else list(labels),
        "reason": reason,
        "fields": fields,
    }
    return call("amend", review_id=review_id, json=drop_none(body))


def answer_call(
    task: Task,
    verdict: Verdict,
    *,
    note: Optional[str],
    failure_category: Optional[str],
    review_id: Optional[str],
    next: Optional[str],
    next_queue: Optional[str],
    fields: Optional[JSON] = None,
) -> Call:
    """The answer to a leased task. ``review_id`` (a fresh UUID when not given) is the
    idempotency key, so a retry of this call is stored once."""
    body: JSON = {
        "lease_id": task["lease_id"],
        "review_id": review_id or str(uuid.uuid4()),
        "note": note,
        "failure_category": failure_category,
        "fields": fields,
    }
    if isinstance(verdict, Escalate):
        body["escalate"] = {"reason": verdict.reason}
    elif isinstance(verdict, Skip):
        body["skip"] = {"reason": verdict.reason}
    elif isinstance(verdict, Labels):
        body["labels"] = list(verdict.labels)
    else:
        body["label"] = verdict
    if next is not None:
        body["next"] = drop_none({"project": next, "queue": next_queue})
    elif next_queue is not None:
        raise ValueError("next_queue needs next (the project to claim the next task from)")
    return call("answer", task_id=task["task_id"], json=drop_none(body))


def webhook_body(url: Optional[str], events: Optional[Sequence[str]], enabled: Optional[bool]) -> JSON:
    if isinstance(events, str):  # a single pattern would be sent as its letters
        raise TypeError(f"events is a list of patterns, got the string {events!r}")
    return drop_none({"url": url, "events": list(events) if events is not None else None, "enabled": enabled})


def import_call(project: str, format: str, path: PathLike, as_: Optional[str]) -> Call:
    """An import of the file at ``path``, sent as it is with its length. The caller sets
    ``content`` to the file's chunks (read as they are sent, never held whole); the call
    is sent once, like every request that is not marked idempotent."""
    req = call("import_file", project=project, params={"format": format, "as": as_})
    req.headers = {
        "content-type": "application/x-ndjson" if format == "jsonl" else "application/json",
        "content-length": str(os.path.getsize(path)),
    }
    return req


def file_chunks(path: PathLike) -> Iterator[bytes]:
    """The bytes of the file at ``path``, `FILE_CHUNK` at a time."""
    with open(path, "rb") as f:
        while True:
            chunk = f.read(FILE_CHUNK)
            if not chunk:
                return
            yield chunk


def error_detail(err: Mapping[str, Any], status: int) -> FlywheelError:
    """A `FlywheelError` from an ``error`` object reported inside a 2xx answer."""
    return FlywheelError(
        status, str(err.get("code", "error")), str(err.get("message", "")), err.get("field"), line=err.get("line")
    )


def frame_items(
    dataframe: Any,
    id_column: str,
    text_column: str,
    score_columns: Union[Sequence[str], Mapping[str, str]],
    *,
    model: str,
    version: Optional[str],
    attribute_columns: Sequence[str],
) -> Iterator[JSON]:
    """The rows of a pandas DataFrame as items, read row by row: ``payload.text`` from
    ``text_column``, scores from ``score_columns`` (column names that are the labels, or a
    mapping label → column), attributes from ``attribute_columns``."""
    try:
        import pandas  # noqa: F401  (only to say what is missing)
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("submit_df needs pandas: pip install 'flywheel-hitl[pandas]'") from e
    scores: List[Tuple[str, str]] = (
        list(score_columns.items()) if isinstance(score_columns, Mapping) else [(c, c) for c in score_columns]
    )
    columns = [id_column, text_column, *(c for _, c in scores), *attribute_columns]
    missing = [c for c in columns if c not in dataframe.columns]
    if missing:
        raise KeyError(f"the dataframe has no column {missing[0]!r}")
    n_scores = len(scores)
    for row in dataframe[columns].itertuples(index=False, name=None):
        item: JSON = {
            "external_id": str(row[0]),
            "payload": {"text": str(row[1])},
        }
        if n_scores:
            item["prediction"] = drop_none(
                {
                    "model": model,
                    "version": version,
                    "scores": {label: float(row[2 + i]) for i, (label, _) in enumerate(scores)},
                }
            )
        if attribute_columns:
            item["attributes"] = {name: _plain(row[2 + n_scores + i]) for i, name in enumerate(attribute_columns)}
        yield item


def _plain(v: Any) -> Any:
    """A numpy scalar as the Python value JSON can hold."""
    item = getattr(v, "item", None)
    return item() if callable(item) else v
