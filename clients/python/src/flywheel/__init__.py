"""Flywheel's Python client: decisions in, labels out, reviewers scripted.

    from flywheel import Client
    fw = Client("http://127.0.0.1:7700", api_key=SERVICE_KEY)
    decisions = fw.submit("sms", items)
    for label in fw.labels("sms", follow=True):
        ...

`Client` is synchronous; `AsyncClient` has the same methods for asyncio. Refused requests
raise `FlywheelError`; `flywheel.webhooks.verify` checks a delivery's signature.
"""

from . import models, webhooks
from ._common import Escalate, Labels, Retry, Skip, Verdict
from .aclient import AsyncClient
from .client import Client
from .errors import FlywheelError, TransportError
from .feed import AsyncFeed, Feed

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "AsyncFeed",
    "Client",
    "Escalate",
    "Labels",
    "Feed",
    "FlywheelError",
    "Retry",
    "Skip",
    "TransportError",
    "Verdict",
    "models",
    "webhooks",
]
