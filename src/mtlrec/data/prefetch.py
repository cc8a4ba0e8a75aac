"""Run a producer in a background thread, ahead of its consumer, through a bounded queue.

Reading (pyarrow), encoding (pyarrow compute, numpy) and the model's step (torch) release the GIL
for their heavy work, so a thread is enough to overlap input with training. The queue bounds the
memory the producer may run ahead by. An exception in the producer is re-raised in the consumer
(with its original traceback); a consumer that stops early (break, error, ``close()``) stops the
producer and joins its thread, so no thread is left blocked on a full queue.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")

_POLL_SECONDS = 0.05


class _End:
    pass


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def prefetch(produce: Callable[[], Iterator[T]], depth: int, name: str = "mtlrec-prefetch") -> Iterator[T]:
    """Yield ``produce()``'s items, computed in a thread up to ``depth`` items ahead (0: no thread)."""
    if depth <= 0:
        yield from produce()
        return
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in produce():
                if not put(item):
                    return
            put(_End())
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, which re-raises it
            put(_Failure(error))

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if isinstance(item, _End):
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()
