"""``Conntrack.events_async()``: the event stream as an async iterator.

Design: the event socket is registered with the running loop (``loop.add_reader``) and
read without blocking (``EventIterator.poll()``, O_NONBLOCK) only when the consumer asks
for the next item. No thread is involved, so cancelling the consumer (a timeout, a
task cancelled) leaves nothing running, and the kernel's receive buffer is the only
queue: a consumer that falls behind sees ``Overrun`` items, as with the blocking
iterator. A worker thread feeding an ``asyncio.Queue`` would add a second, hidden
buffer between the kernel and the consumer, hide overruns behind it, and need its own
shutdown protocol. Needs a loop with ``add_reader`` (the default loop on Linux, uvloop).
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Optional, Type, Union

from ._native import Event, EventIterator, ExpectEvent, Overrun

__all__ = ["AsyncEventIterator"]

_Item = Union[Event, ExpectEvent, Overrun]


def _wake(fut: "asyncio.Future[None]") -> None:
    if not fut.done():
        fut.set_result(None)


class AsyncEventIterator:
    """Async iterator over ``Event``, ``ExpectEvent`` and ``Overrun`` objects."""

    def __init__(self, events: EventIterator) -> None:
        self._events = events

    @property
    def events(self) -> EventIterator:
        """The underlying (blocking) iterator: ``stats``, ``table_size``, ``fileno()``."""
        return self._events

    def __aiter__(self) -> AsyncEventIterator:
        return self

    async def __anext__(self) -> _Item:
        # Bounded per wake-up: each turn reads the socket once; waits are the loop's.
        while True:
            item = self._events.poll()
            if item is not None:
                return item
            if self._events.closed:
                raise StopAsyncIteration
            await self._readable()

    async def get(self, timeout: Optional[float] = None) -> Optional[_Item]:
        """The next item, waiting at most ``timeout`` seconds; None if nothing came."""
        try:
            return await asyncio.wait_for(self.__anext__(), timeout)
        except asyncio.TimeoutError:
            return None
        except StopAsyncIteration:
            return None

    async def _readable(self) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        fd = self._events.fileno()
        loop.add_reader(fd, _wake, fut)
        try:
            await fut
        finally:
            loop.remove_reader(fd)

    def close(self) -> None:
        """Unsubscribes and closes the socket."""
        self._events.close()

    async def aclose(self) -> None:
        """Unsubscribes and closes the socket."""
        self._events.close()

    @property
    def closed(self) -> bool:
        """True once closed."""
        return self._events.closed

    async def __aenter__(self) -> AsyncEventIterator:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()
