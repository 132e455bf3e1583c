"""The test session starts a real `flywheel serve` (the debug binary the workspace's tests
build, or ``FLYWHEEL_BIN``) on a free port with a fresh SQLite database, and stops it at
the end. Every test makes its own project, so tests share the server but no state. The
server may deliver webhooks to private addresses: the tests' receivers are on 127.0.0.1."""

import itertools
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, TypeVar

import pytest

from flywheel import Client

ROOT = Path(__file__).resolve().parents[3]

POLICY: Dict[str, Any] = {
    "rules": [
        {"name": "confident", "when": "confidence >= 0.95", "action": "auto"},
        {"name": "uncertain", "when": "true", "action": "review", "queue": "standard", "tier": 1},
    ],
    "lease_seconds": 300,
    "show_suggestion": True,
}


@dataclass
class Server:
    url: str
    admin_key: str


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    binary = os.environ.get("FLYWHEEL_BIN") or str(ROOT / "target" / "debug" / "flywheel")
    if not Path(binary).exists():
        pytest.fail(f"no flywheel binary at {binary}: run `cargo build -p flywheel-cli` or set FLYWHEEL_BIN")
    data = tmp_path_factory.mktemp("flywheel")
    admin_key = secrets.token_hex(16)
    env = {
        **os.environ,
        "FLYWHEEL_ADMIN_KEY": admin_key,
        "FLYWHEEL_LOG": "warn",
        "FLYWHEEL_WEBHOOKS_ALLOW_PRIVATE": "true",
    }
    proc = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--database", f"sqlite://{data}/flywheel.db"],
        stdout=subprocess.PIPE,
        stderr=sys.stderr,
        env=env,
        text=True,
    )
    assert proc.stdout is not None
    url = None
    for line in proc.stdout:
        if line.startswith("flywheel listening on "):
            url = line.split()[3]
            break
    if url is None:
        proc.wait()
        pytest.fail(f"flywheel serve exited ({proc.returncode}) before it listened")
    # Keep reading stdout so the server never blocks on a full pipe.
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    try:
        yield Server(url, admin_key)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="session")
def admin(server: Server) -> Iterator[Client]:
    with Client(server.url, api_key=server.admin_key) as fw:
        yield fw


_names = itertools.count()


@dataclass
class Project:
    name: str
    service_key: str
    reviewer_keys: List[str]


def new_project(admin: Client) -> Project:
    """A fresh project (ham/spam, confident → auto, the rest → review in `standard`), a
    service key and two tier-1 reviewers."""
    name = f"p{next(_names)}-{secrets.token_hex(3)}"
    admin.create_project(name, ["ham", "spam"], POLICY)
    key = admin.create_key([name])["api_key"]
    reviewers = [admin.create_reviewer(f"{name}-r{i}", [1], [name])["api_key"] for i in range(2)]
    return Project(name, key, reviewers)


@pytest.fixture
def project(admin: Client) -> Project:
    return new_project(admin)


T = TypeVar("T")


def eventually(check: Callable[[], Optional[T]], what: str, within: float = 60.0) -> T:
    """``check()``'s first answer that is not ``None``, asked again until it has one (the
    server's background work, a webhook delivery, happens when it happens). ``within`` only
    stops a test that would otherwise hang; nothing is asserted about how long it took."""
    deadline = time.monotonic() + within
    while True:
        got = check()
        if got is not None:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.05)


def instant(rfc3339: str) -> datetime:
    """An RFC 3339 time as the server writes it (`2026-12-05T21:36:18.66Z`)."""
    stamp = rfc3339.replace("Z", "+0000")
    if "." not in stamp:  # a whole second is written without a fraction
        stamp = stamp.replace("+", ".0+")
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f%z")


def item(i: int, spam: float, text: str = "") -> Dict[str, Any]:
    return {
        "external_id": f"m{i}",
        "payload": {"text": text or f"message {i}"},
        "prediction": {"model": "nb", "version": "1", "scores": {"spam": spam, "ham": round(1 - spam, 6)}},
    }
