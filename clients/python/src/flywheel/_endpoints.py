"""Every route the client calls, in one table: method, path, the query parameters and body
fields it sends, and the schema of the answer it reads.

The test suite reads this table against the running server's OpenAPI document: each
route must exist with that method and those parameters, each body field must be one the
schema takes (and every field it requires must be sent), and each answer's schema must be
the one the client's model mirrors.
"""

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

__all__ = ["Endpoint", "ENDPOINTS"]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    #: Query parameters the client may send.
    query: Tuple[str, ...] = ()
    #: The request body's schema (a name under ``components.schemas``), or ``"object"``
    #: for a free JSON object (a policy), ``"string"`` for a file sent as it is (an
    #: import), or ``None`` for no body.
    body: Optional[str] = None
    #: The body fields the client may send (checked against ``body``'s schema).
    sends: Tuple[str, ...] = ()
    #: The schema of the success answer the client reads (``"X[]"`` for an array of X,
    #: ``"object"`` for a free object, ``None`` for no body).
    returns: Optional[str] = None
    #: Sending the same request twice is safe, so a transient failure is retried.
    idempotent: bool = False


_P = "/v1/projects/{project}"
_W = _P + "/webhooks/{webhook_id}"

ENDPOINTS: Dict[str, Endpoint] = {
    "health": Endpoint("GET", "/healthz", returns="Health", idempotent=True),
    "me": Endpoint("GET", "/v1/me", returns="Me", idempotent=True),
    # projects and policies
    "create_project": Endpoint(
        "POST",
        "/v1/projects",
        body="CreateProject",
        sends=("name", "labels", "label_mode", "policy", "answer_fields"),
        returns="ProjectCreated",
    ),
    "projects": Endpoint("GET", "/v1/projects", returns="ProjectSummary[]", idempotent=True),
    "project": Endpoint("GET", _P, returns="ProjectOut", idempotent=True),
    "set_policy": Endpoint("PUT", _P + "/policy", body="object", returns="PolicyStored"),
    "check_policy": Endpoint("POST", _P + "/policy/check", body="object", returns="PolicyChecked", idempotent=True),
    "backtest": Endpoint(
        "POST",
        _P + "/policy/backtest",
        body="BacktestIn",
        sends=("policy", "window"),
        returns="BacktestOut",
        idempotent=True,
    ),
    # reviewers and keys
    "create_reviewer": Endpoint(
        "POST",
        "/v1/reviewers",
        body="CreateReviewer",
        sends=("name", "tiers", "projects", "password"),
        returns="ReviewerCreated",
    ),
    "reviewers": Endpoint("GET", "/v1/reviewers", returns="Account[]", idempotent=True),
    "update_reviewer": Endpoint(
        "PATCH",
        "/v1/reviewers/{name}",
        body="UpdateReviewer",
        sends=("tiers", "projects", "password", "active"),
        returns="Account",
        idempotent=True,
    ),
    "reviewer_key": Endpoint("POST", "/v1/reviewers/{name}/keys", body="AddKeyIn", sends=("name",), returns="NewKey"),
    "project_reviewers": Endpoint("GET", _P + "/reviewers", returns="ReviewerPage", idempotent=True),
    "hold": Endpoint("POST", _P + "/reviewers/{name}/hold", body="HoldIn", sends=("reason",), idempotent=True),
    "release": Endpoint("POST", _P + "/reviewers/{name}/release", returns="Released", idempotent=True),
    "create_key": Endpoint(
        "POST", "/v1/keys", body="CreateKey", sends=("scope", "projects", "name"), returns="KeyCreated"
    ),
    "keys": Endpoint("GET", "/v1/keys", returns="KeyOut[]", idempotent=True),
    "revoke_key": Endpoint("POST", "/v1/keys/{hash}/revoke", idempotent=True),
    # items and gold
    "submit": Endpoint(
        "POST", _P + "/items", body="SubmitItems", sends=("items",), returns="SubmitResponse", idempotent=True
    ),
    "item": Endpoint("GET", _P + "/items/{external_id}", returns="ItemDetailOut", idempotent=True),
    "search_items": Endpoint(
        "GET",
        _P + "/items",
        query=("q", "label", "reviewer", "state", "since", "until", "cursor", "limit"),
        returns="ItemSearchPage",
        idempotent=True,
    ),
    "override_item": Endpoint(
        "POST",
        _P + "/items/{external_id}/override",
        body="OverrideIn",
        sends=("action", "reason", "label", "labels", "fields", "queue", "tier", "priority"),
        returns="OverrideOut",
    ),
    "add_gold": Endpoint("POST", _P + "/gold", body="AddGold", sends=("items",), returns="GoldAdded", idempotent=True),
    # review work
    "claim": Endpoint("POST", _P + "/claim", body="ClaimIn", sends=("queue", "wait_ms"), returns="ClaimOut"),
    "heartbeat": Endpoint(
        "POST",
        "/v1/tasks/{task_id}/heartbeat",
        body="HeartbeatIn",
        sends=("lease_id",),
        returns="HeartbeatOut",
        idempotent=True,
    ),
    "answer": Endpoint(
        "POST",
        "/v1/tasks/{task_id}/reviews",
        body="ReviewIn",
        sends=(
            "lease_id",
            "review_id",
            "label",
            "labels",
            "escalate",
            "skip",
            "failure_category",
            "note",
            "fields",
            "next",
        ),
        returns="ReviewOut",
        idempotent=True,
    ),
    "amend": Endpoint(
        "POST",
        "/v1/reviews/{review_id}/amend",
        body="AmendIn",
        sends=("amend_id", "label", "labels", "reason", "fields"),
        returns="AmendOut",
        idempotent=True,
    ),
    # feeds and figures
    "labels": Endpoint("GET", _P + "/labels", query=("after", "limit"), returns="LabelPage", idempotent=True),
    "project_events": Endpoint("GET", _P + "/events", query=("after", "limit"), returns="EventPage", idempotent=True),
    "events": Endpoint("GET", "/v1/events", query=("after", "limit"), returns="EventPage", idempotent=True),
    "stats": Endpoint("GET", _P + "/stats", returns="StatsOut", idempotent=True),
    "queues": Endpoint("GET", _P + "/queues", returns="QueuesOut", idempotent=True),
    "workload": Endpoint("GET", _P + "/workload", query=("since", "until"), returns="WorkloadOut", idempotent=True),
    "agreement": Endpoint("GET", _P + "/agreement", returns="AgreementOut", idempotent=True),
    "model": Endpoint("GET", _P + "/model", returns="object", idempotent=True),
    "train": Endpoint("POST", _P + "/model/train", returns="object"),
    "retrain": Endpoint("POST", _P + "/model/retrain", returns="object"),
    "predict": Endpoint(
        "POST", _P + "/model/predict", body="PredictIn", sends=("items",), returns="object", idempotent=True
    ),
    "monitors": Endpoint("GET", _P + "/monitors", returns="object", idempotent=True),
    # exports and imports
    "export": Endpoint("GET", _P + "/export", query=("format", "since", "until", "source"), idempotent=True),
    "import_file": Endpoint("POST", _P + "/import", query=("format", "as"), body="string", returns="ImportReport"),
    # webhooks
    "create_webhook": Endpoint(
        "POST", _P + "/webhooks", body="EndpointSpec", sends=("url", "events", "enabled"), returns="WebhookWithSecret"
    ),
    "webhooks": Endpoint("GET", _P + "/webhooks", returns="WebhookList", idempotent=True),
    "webhook": Endpoint("GET", _W, returns="WebhookOut", idempotent=True),
    "update_webhook": Endpoint(
        "PATCH",
        _W,
        body="EndpointPatch",
        sends=("url", "events", "enabled"),
        returns="WebhookOut",
        idempotent=True,
    ),
    "delete_webhook": Endpoint("DELETE", _W, idempotent=True),
    "rotate_webhook_secret": Endpoint("POST", _W + "/rotate", returns="WebhookWithSecret"),
    "replay_webhook": Endpoint("POST", _W + "/replay", body="ReplayIn", sends=("from_seq",), returns="WebhookOut"),
    "webhook_deliveries": Endpoint(
        "GET", _W + "/deliveries", query=("limit",), returns="DeliveryList", idempotent=True
    ),
}
