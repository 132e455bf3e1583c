"""The wire format, as typed dictionaries: what the API takes and answers.

Each class mirrors one schema of the server's OpenAPI document (``GET /v1/openapi.json``);
``SCHEMAS`` says which. The test suite compares every class here with the document of a
running server — field names, which fields are required, and their types — so the client
and the server cannot drift apart unnoticed.

A field the schema does not require is ``NotRequired``; where the server may also send it
as ``null`` it is ``Optional`` too. The server may add fields (it adds, never renames), so
code should read the fields it knows and ignore the rest.
"""

import sys
from typing import Any, Dict, List, Optional, Union

if sys.version_info >= (3, 11):
    from typing import NotRequired, TypedDict
else:  # pragma: no cover - exercised on Python < 3.11 only
    from typing_extensions import NotRequired, TypedDict

JSON = Dict[str, Any]

# ---------------------------------------------------------------------------- requests


class Prediction(TypedDict):
    """A model's scores: a probability in [0, 1] for every label of the project."""

    model: str
    version: NotRequired[Optional[str]]
    scores: Dict[str, float]
    #: How far the item lies from what the model was trained on, in [0, 1]; rules read it
    #: as ``novelty`` (the built-in model gives its own when it scores an item).
    novelty: NotRequired[Optional[float]]


class Item(TypedDict):
    """An item to decide; ``external_id`` is the idempotency key."""

    external_id: str
    payload: JSON
    attributes: NotRequired[Optional[JSON]]
    prediction: NotRequired[Optional[Prediction]]


class GoldItem(TypedDict):
    """A gold item: an item with its known answer."""

    external_id: str
    payload: JSON
    #: A single-label project's known answer.
    label: NotRequired[Optional[str]]
    #: A multi-label project's known answer: the labels present (``[]``: none of these).
    labels: NotRequired[Optional[List[str]]]
    attributes: NotRequired[Optional[JSON]]
    prediction: NotRequired[Optional[Prediction]]


class PredictItem(TypedDict):
    """An item to score with the project's built-in model (nothing is stored)."""

    payload: JSON
    attributes: NotRequired[JSON]


# ---------------------------------------------------------------------------- decisions


class Route(TypedDict):
    queue: str
    tier: int
    priority: int
    overlap: int
    sla_seconds: NotRequired[Optional[int]]
    warn_before_seconds: NotRequired[Optional[int]]


class Decision(TypedDict):
    """What the policy decided for one item: ``auto`` with a label, or ``review`` with a route."""

    external_id: str
    item_id: int
    outcome: str
    label: NotRequired[Optional[str]]
    #: A multi-label project's auto decision: the labels at or above their thresholds.
    labels: NotRequired[Optional[List[str]]]
    route: NotRequired[Optional[Route]]
    audit: NotRequired[Optional[Route]]
    rule: str
    reasons: List[str]
    policy_version: int
    duplicate: bool


class SubmitResponse(TypedDict):
    decisions: List[Decision]


class Resolution(TypedDict):
    label: str
    #: A multi-label project's resolution: the labels present (``label`` is its encoding).
    labels: NotRequired[Optional[List[str]]]
    source: str
    method: str
    confidence: float
    reviewers: List[str]
    resolved_at: str


# ---------------------------------------------------------------------------- review work


class ClaimItem(TypedDict):
    external_id: str
    payload: JSON
    attributes: JSON


class Suggestion(TypedDict):
    label: str
    confidence: float
    scores: Dict[str, float]
    model: str
    #: Only in a multi-label project: the labels at or above their thresholds.
    labels: NotRequired[Optional[List[str]]]


class Task(TypedDict):
    """A leased task, as ``claim`` (or an answer with ``next``) hands it to a reviewer."""

    task_id: int
    lease_id: int
    lease_expires_at: str
    stage: str
    queue: str
    tier: int
    labels: List[str]
    item: ClaimItem
    suggestion: NotRequired[Optional[Suggestion]]
    #: Only on ``adjudicate`` tasks: why the task is here and the item's earlier answers.
    context: NotRequired[Optional["AdjudicationContext"]]
    #: Why the item is in review: the policy's rule and its reasons.
    why: NotRequired[Optional["Why"]]


class Why(TypedDict):
    """The rule that sent an item to review, and the reasons it gave."""

    rule: str
    reasons: List[str]


class ErrorDetail(TypedDict):
    code: str
    message: str
    field: NotRequired[Optional[str]]
    #: An import's row at fault: its line in the file, from 1.
    line: NotRequired[Optional[int]]
    #: ``break_due`` (429): seconds until claims are taken again.
    retry_after_s: NotRequired[Optional[int]]


class ReviewResult(TypedDict):
    """What an answer did; with ``next``, the task leased in the same commit (or ``None``)."""

    review_id: str
    outcome: str
    resolution: NotRequired[Optional[Resolution]]
    next: NotRequired[Optional[Task]]
    next_error: NotRequired[Optional[ErrorDetail]]


class AmendResult(TypedDict):
    """What a change of mind did: ``undone`` (the label replaced while the task was open,
    within the undo window), ``amended`` (the item went back to adjudication) or
    ``unchanged``."""

    review_id: str
    amend_id: str
    outcome: str
    previous: NotRequired[Optional[str]]
    label: str
    fields: NotRequired[Optional[Dict[str, Any]]]
    adjudication_task_id: NotRequired[Optional[int]]


class Heartbeat(TypedDict):
    lease_expires_at: str


# ---------------------------------------------------------------------------- feeds


class Label(TypedDict):
    """One entry of the label feed; a later entry for an item supersedes an earlier one."""

    cursor: int
    external_id: str
    #: A single-label project's label.
    label: NotRequired[Optional[str]]
    #: A multi-label project's labels present (``[]``: none of these).
    labels: NotRequired[Optional[List[str]]]
    source: str
    model: NotRequired[Optional[str]]
    model_version: NotRequired[Optional[str]]
    policy_version: int
    resolved_at: str
    #: In a project with answer fields: the item's resolved fields (``{}`` when auto).
    fields: NotRequired[Optional[Dict[str, Any]]]


class LabelPage(TypedDict):
    labels: List[Label]
    next_cursor: int


class Event(TypedDict):
    seq: int
    at: str
    kind: str
    actor: str
    external_id: NotRequired[Optional[str]]
    task_id: NotRequired[Optional[int]]
    data: JSON


class EventPage(TypedDict):
    events: List[Event]
    next_cursor: int


class QueueStats(TypedDict):
    open: int
    oldest_age_s: float
    due_soon: int
    overdue: int
    breached_total: int
    answered_within_sla_1h: NotRequired[Optional[float]]
    answered_within_sla_24h: NotRequired[Optional[float]]


class Stranded(TypedDict):
    """Open tasks of a queue and tier no active reviewer of the project holds."""

    queue: str
    tier: int
    open: int
    oldest_age_s: float
    message: str


class QueueOpen(TypedDict):
    open: int


class Queues(TypedDict):
    """Open tasks per queue (`GET …/queues`): what a reviewer may read of `stats`."""

    queues: Dict[str, QueueOpen]


class Stats(TypedDict):
    items: int
    auto: int
    review: int
    resolved: int
    open_tasks: int
    automation_rate: float
    audits: int
    auto_precision_from_audits: NotRequired[Optional[float]]
    auto_precision_interval: NotRequired[Optional[List[float]]]
    thresholds: Dict[str, float]
    queues: Dict[str, QueueStats]
    stranded: List[Stranded]


class WorkloadRow(TypedDict):
    """One key of a workload dimension; ``key`` is None for "none tagged" / "not resolved"."""

    key: NotRequired[Optional[str]]
    answers: int
    seconds: float
    time_share: float
    median_seconds: float
    p90_seconds: float
    disagreement_rate: float
    escalation_rate: float


class WorkloadFinding(TypedDict):
    tier: int
    dimension: str
    key: str
    time_share: float
    answer_share: float
    median_seconds: float
    rest_median_seconds: float
    text: str


class Workload(TypedDict):
    """Where reviewer time went in ``[since, until)``, rows by time share, highest first."""

    since: str
    until: str
    answers: int
    seconds: float
    failure_category: List[WorkloadRow]
    label: List[WorkloadRow]
    queue: List[WorkloadRow]
    tier: List[WorkloadRow]
    reviewer: List[WorkloadRow]
    findings: List[WorkloadFinding]


class ItemRecord(TypedDict):
    item_id: int
    external_id: str
    payload: JSON
    attributes: JSON
    prediction: NotRequired[Optional[JSON]]
    created_at: str


class TaskRecord(TypedDict):
    task_id: int
    stage: str
    queue: str
    tier: int
    priority: int
    overlap: int
    answered: int
    state: str
    reason: NotRequired[Optional[str]]
    created_at: str
    closed_at: NotRequired[Optional[str]]
    due_at: NotRequired[Optional[str]]


class ReviewRecord(TypedDict):
    review_id: str
    task_id: int
    reviewer: str
    answer: str
    label: NotRequired[Optional[str]]
    reason: NotRequired[Optional[str]]
    failure_category: NotRequired[Optional[str]]
    note: NotRequired[Optional[str]]
    claimed_at: str
    answered_at: str
    time_on_task_ms: int
    fields: NotRequired[Optional[Dict[str, Any]]]


class AdjudicationContext(TypedDict):
    """What an adjudicator sees beside the item: the task's reason and earlier answers."""

    reason: NotRequired[Optional[str]]
    answers: List[ReviewRecord]


class ItemDetail(TypedDict):
    """An item's whole story: decisions, tasks, reviews, resolution, events."""

    item: ItemRecord
    decisions: List[Decision]
    tasks: List[TaskRecord]
    reviews: List[ReviewRecord]
    resolution: NotRequired[Optional[Resolution]]
    events: List[Event]


class ItemHit(TypedDict):
    """One item an item search found."""

    item_id: int
    external_id: str
    payload: JSON
    outcome: str
    rule: str
    resolved_label: NotRequired[Optional[str]]
    open_tasks: int
    created_at: str


class ItemSearchPage(TypedDict):
    """A page of an item search, newest first; ``next_cursor`` is None on the last page. A
    page reads at most 10,000 items, so it may hold fewer than asked, even none, and still
    have a ``next_cursor``."""

    items: List[ItemHit]
    next_cursor: NotRequired[Optional[int]]


class OverrideResult(TypedDict):
    """What an admin's override did: tasks closed, leases cancelled, and the new task
    (re-route) or the resolution (resolve)."""

    item_id: int
    external_id: str
    action: str
    closed_tasks: List[int]
    cancelled_leases: List[int]
    task_id: NotRequired[Optional[int]]
    resolution: NotRequired[Optional[Resolution]]


# ---------------------------------------------------------------------------- admin


class ProjectCreated(TypedDict):
    name: str
    labels: List[str]
    #: ``single`` or ``multi``.
    label_mode: str
    policy_version: int


class AnswerFieldSpec(TypedDict):
    """One declared answer field: ``type`` is ``enum`` (``values``), ``number`` (``min``,
    ``max``), ``bool`` or ``text`` (``max_length``)."""

    name: str
    type: str
    values: NotRequired[Optional[List[str]]]
    min: NotRequired[Optional[float]]
    max: NotRequired[Optional[float]]
    max_length: NotRequired[Optional[int]]
    required: NotRequired[bool]
    when_labels: NotRequired[Optional[List[str]]]


class Project(TypedDict):
    name: str
    labels: List[str]
    #: ``single`` or ``multi``.
    label_mode: str
    policy: JSON
    policy_version: int
    answer_fields: List[AnswerFieldSpec]


class ProjectSummary(TypedDict):
    name: str
    labels: List[str]
    policy_version: int
    created_at: str


class PolicyStored(TypedDict):
    policy_version: int


class QueueTier(TypedDict):
    queue: str
    tier: int


class PolicyChecked(TypedDict):
    valid: bool
    queues: List[QueueTier]


class ReviewerCreated(TypedDict):
    id: int
    name: str
    tiers: List[int]
    projects: List[str]
    api_key: str


class Account(TypedDict):
    """A reviewer's account: grants, password set or not, active keys, deactivated or not."""

    name: str
    tiers: List[int]
    projects: List[str]
    has_password: bool
    active_keys: int
    created_at: str
    active: bool


class ReviewerSession(TypedDict):
    """A reviewer's current work session (answers with no gap over the session gap)."""

    started_at: int
    answers: int
    minutes: float
    median_seconds: NotRequired[Optional[float]]
    too_fast: int
    signals: int
    accuracy: NotRequired[Optional[float]]


class ReviewerFatigue(TypedDict):
    """When the fatigue monitor last fired, and a break that refuses claims until then."""

    fatigued_since: NotRequired[Optional[int]]
    this_session: bool
    break_until: NotRequired[Optional[int]]


class ReviewerRecord(TypedDict):
    """A reviewer's record in one project: answers, gold accuracy, agreement, hold, and
    their current session and fatigue state."""

    name: str
    answers: int
    gold_answers: int
    gold_accuracy: NotRequired[Optional[float]]
    gold_accuracy_interval: NotRequired[Optional[List[float]]]
    agreement_with_consensus: NotRequired[Optional[float]]
    ds_accuracy: NotRequired[Optional[float]]
    median_time_on_task_s: NotRequired[Optional[float]]
    held: bool
    held_reason: NotRequired[Optional[str]]
    session: NotRequired[Optional[ReviewerSession]]
    fatigue: ReviewerFatigue


class ReviewerPage(TypedDict):
    reviewers: List[ReviewerRecord]


class Released(TypedDict):
    released: str


class LabelAgreement(TypedDict):
    """Agreement on one label: Fleiss' kappa and Krippendorff's alpha of its yes/no."""

    fleiss_kappa: NotRequired[Optional[float]]
    krippendorff_alpha: NotRequired[Optional[float]]


class PairAgreement(TypedDict):
    """Cohen's κ of two reviewers over the items both answered."""

    worker_a: str
    worker_b: str
    shared_tasks: int
    kappa: NotRequired[Optional[float]]
    observed_agreement: NotRequired[Optional[float]]


class SingleLabelAgreement(TypedDict):
    """A single-label project's agreement (``label_mode`` ``"single"``)."""

    label_mode: str
    answers: int
    tasks: int
    workers: int
    labels: List[str]
    fleiss_kappa: NotRequired[Optional[float]]
    randolph_kappa: NotRequired[Optional[float]]
    fleiss_tasks_used: int
    fleiss_raters_per_task: NotRequired[Optional[int]]
    krippendorff_alpha: NotRequired[Optional[float]]
    cohen_kappa_pairs: List[PairAgreement]
    per_label: Dict[str, LabelAgreement]


class MultiLabelAgreement(TypedDict):
    """A multi-label project's agreement (``label_mode`` ``"multi"``): per label on its
    yes/no, and Krippendorff's alpha over the answered sets with the set ``distance``
    (``"masi"`` or ``"jaccard"``)."""

    label_mode: str
    answers: int
    tasks: int
    workers: int
    labels: List[str]
    distance: str
    krippendorff_alpha: NotRequired[Optional[float]]
    per_label: Dict[str, LabelAgreement]


#: ``GET /v1/projects/{project}/agreement`` (schema ``AgreementOut``, one of the two):
#: tell them apart by ``label_mode``.
Agreement = Union[SingleLabelAgreement, MultiLabelAgreement]


class KeyCreated(TypedDict):
    api_key: str
    hash: str
    scope: str
    projects: List[str]
    name: NotRequired[Optional[str]]


class NewKey(TypedDict):
    api_key: str
    hash: str
    name: NotRequired[Optional[str]]


class KeyRecord(TypedDict):
    """A key as listed (its hash, never the key); ``last_used_at`` is to within a minute."""

    hash: str
    kind: str
    reviewer: NotRequired[Optional[str]]
    projects: List[str]
    created_at: str
    revoked_at: NotRequired[Optional[str]]
    name: NotRequired[Optional[str]]
    last_used_at: NotRequired[Optional[str]]


class Me(TypedDict):
    kind: str
    name: NotRequired[Optional[str]]
    tiers: List[int]
    projects: List[str]
    answers_today: int


class GoldAdded(TypedDict):
    added: int


class Health(TypedDict):
    status: str


# ---------------------------------------------------------------------------- imports


class ImportReport(TypedDict):
    """What an import did: rows read, items stored, rows whose external id was already
    stored (left as they were), items resolved with an imported label, gold items added."""

    rows: int
    items: int
    duplicates: int
    labels: int
    gold: int


# ---------------------------------------------------------------------------- webhooks


class Webhook(TypedDict):
    """A webhook endpoint (never its secret). ``cursor`` is the event-log position served:
    the next event sent is the first after it."""

    id: int
    url: str
    events: List[str]
    enabled: bool
    failing: bool
    cursor: int
    attempts: int
    next_attempt_at: NotRequired[Optional[str]]
    previous_secret_until: NotRequired[Optional[str]]
    created_at: str
    updated_at: str


class WebhookWithSecret(Webhook):
    """An endpoint with its signing secret (``whsec_…``): the answer of a creation or a
    rotation, the only time the secret is shown."""

    secret: str


class WebhookList(TypedDict):
    webhooks: List[Webhook]


class Delivery(TypedDict):
    """One attempt to deliver one event: ``outcome`` is ``delivered``, ``failed`` (tried
    again at ``next_attempt_at``), ``gone`` (410: the endpoint was disabled) or ``given_up``."""

    id: int
    event_seq: int
    type: str
    message_id: str
    attempt: int
    at: str
    status: NotRequired[Optional[int]]
    latency_ms: int
    response: str
    outcome: str
    next_attempt_at: NotRequired[Optional[str]]


class DeliveryList(TypedDict):
    deliveries: List[Delivery]


class QueueLoad(TypedDict):
    items: int
    human_answers: int


class BacktestFigures(TypedDict):
    """What one policy would have done over the replayed items."""

    items: int
    auto: int
    review: int
    automation_rate: NotRequired[Optional[float]]
    auto_errors: int
    auto_error_rate: NotRequired[Optional[float]]
    auto_error_interval: NotRequired[Optional[List[float]]]
    load: Dict[str, QueueLoad]
    rules: Dict[str, int]


class BacktestOut(BacktestFigures):
    """A proposed policy's back-test (these fields) and the policy in force's over the
    same items (``current``, version ``current_version``), for a side-by-side reading."""

    current: BacktestFigures
    current_version: int


#: Each class above and the OpenAPI schema it mirrors (checked by the test suite).
SCHEMAS: Dict[str, type] = {
    "PredictionIn": Prediction,
    "ItemIn": Item,
    "GoldIn": GoldItem,
    "PredictItem": PredictItem,
    "RouteOut": Route,
    "DecisionOut": Decision,
    "SubmitResponse": SubmitResponse,
    "ResolutionOut": Resolution,
    "ClaimItem": ClaimItem,
    "Suggestion": Suggestion,
    "ClaimOut": Task,
    "AdjudicationOut": AdjudicationContext,
    "WhyOut": Why,
    "ErrorDetail": ErrorDetail,
    "ReviewOut": ReviewResult,
    "HeartbeatOut": Heartbeat,
    "AmendOut": AmendResult,
    "LabelOut": Label,
    "LabelPage": LabelPage,
    "EventOut": Event,
    "EventPage": EventPage,
    "QueueOut": QueueStats,
    "StatsOut": Stats,
    "StrandedOut": Stranded,
    "QueuesOut": Queues,
    "QueueOpen": QueueOpen,
    "WorkloadRow": WorkloadRow,
    "WorkloadFinding": WorkloadFinding,
    "WorkloadOut": Workload,
    "ItemOut": ItemRecord,
    "TaskOut": TaskRecord,
    "ReviewRecordOut": ReviewRecord,
    "ItemDetailOut": ItemDetail,
    "ItemHitOut": ItemHit,
    "ItemSearchPage": ItemSearchPage,
    "OverrideOut": OverrideResult,
    "ProjectCreated": ProjectCreated,
    "ProjectOut": Project,
    "AnswerFieldSpec": AnswerFieldSpec,
    "ProjectSummary": ProjectSummary,
    "PolicyStored": PolicyStored,
    "QueueTier": QueueTier,
    "PolicyChecked": PolicyChecked,
    "ReviewerCreated": ReviewerCreated,
    "Account": Account,
    "ReviewerOut": ReviewerRecord,
    "ReviewerSessionOut": ReviewerSession,
    "ReviewerFatigueOut": ReviewerFatigue,
    "ReviewerPage": ReviewerPage,
    "Released": Released,
    "LabelAgreementOut": LabelAgreement,
    "PairAgreement": PairAgreement,
    "SingleLabelAgreement": SingleLabelAgreement,
    "MultiLabelAgreement": MultiLabelAgreement,
    "KeyCreated": KeyCreated,
    "NewKey": NewKey,
    "KeyOut": KeyRecord,
    "QueueLoadOut": QueueLoad,
    "BacktestFigures": BacktestFigures,
    "BacktestOut": BacktestOut,
    "Me": Me,
    "GoldAdded": GoldAdded,
    "Health": Health,
    "ImportReport": ImportReport,
    "WebhookOut": Webhook,
    "WebhookWithSecret": WebhookWithSecret,
    "WebhookList": WebhookList,
    "DeliveryOut": Delivery,
    "DeliveryList": DeliveryList,
}
