"""Cursor-paged feeds (labels, events) as iterators that keep their position.

A feed's ``cursor`` is the position of the last entry it handed out, so a job that stops
at any point — between pages or in the middle of one — saves ``feed.cursor`` and resumes
with ``after=cursor`` without losing or repeating an entry. With ``follow=True`` the
iterator never ends: when it has caught up it polls every ``poll_interval`` seconds.
"""

import asyncio
import time
from collections import deque
from typing import AsyncIterator, Awaitable, Callable, Deque, Generic, Iterator, List, TypeVar

__all__ = ["Feed", "AsyncFeed"]

T = TypeVar("T")


class Feed(Generic[T], Iterator[T]):
    def __init__(
        self,
        fetch: Callable[[int], List[T]],
        position: Callable[[T], int],
        *,
        after: int = 0,
        follow: bool = False,
        poll_interval: float = 1.0,
    ) -> None:
        self._fetch = fetch
        self._position = position
        self._follow = follow
        self._poll = poll_interval
        self._buffer: Deque[T] = deque()
        #: The position of the last entry handed out (``after`` before the first).
        self.cursor = after

    def __iter__(self) -> "Feed[T]":
        return self

    def __next__(self) -> T:
        while not self._buffer:
            # The buffer is empty only when everything fetched has been handed out, so
            # the next page starts after the cursor.
            self._buffer.extend(self._fetch(self.cursor))
            if not self._buffer:
                if not self._follow:
                    raise StopIteration
                time.sleep(self._poll)
        entry = self._buffer.popleft()
        self.cursor = self._position(entry)
        return entry


class AsyncFeed(Generic[T], AsyncIterator[T]):
    def __init__(
        self,
        fetch: Callable[[int], Awaitable[List[T]]],
        position: Callable[[T], int],
        *,
        after: int = 0,
        follow: bool = False,
        poll_interval: float = 1.0,
    ) -> None:
        self._fetch = fetch
        self._position = position
        self._follow = follow
        self._poll = poll_interval
        self._buffer: Deque[T] = deque()
        #: The position of the last entry handed out (``after`` before the first).
        self.cursor = after

    def __aiter__(self) -> "AsyncFeed[T]":
        return self

    async def __anext__(self) -> T:
        while not self._buffer:
            self._buffer.extend(await self._fetch(self.cursor))
            if not self._buffer:
                if not self._follow:
                    raise StopAsyncIteration
                await asyncio.sleep(self._poll)
        entry = self._buffer.popleft()
        self.cursor = self._position(entry)
        return entry
