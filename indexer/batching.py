"""Coalesce concurrent single-text encodes into batched calls.

One short query keeps a core busy for a few milliseconds, and a batch of sixteen costs far
less than sixteen singles (docs/benchmarks.md). Callers that arrive while every lane is busy
queue up; the next caller to find a free lane encodes everything queued, for all of them. A
lone caller never waits: with a free lane it encodes its text at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Encode = Callable[[list[str]], np.ndarray]


@dataclass
class _Slot:
    text: str
    vector: np.ndarray | None = None
    error: BaseException | None = None
    taken: bool = False  # in a batch being encoded
    done: bool = False


class QueryBatcher:
    """``encode_one`` is safe to call from many threads; at most ``lanes`` encodes run at
    once, each of up to ``max_batch`` texts."""

    def __init__(self, encode: Encode, lanes: int = 2, max_batch: int = 16) -> None:
        self._encode = encode
        self._lanes = lanes
        self._max_batch = max_batch
        self._queue: list[_Slot] = []
        self._busy = 0
        self._changed = threading.Condition()

    @property
    def waiting(self) -> int:
        """Texts queued for the next free lane (what a test of the batching waits on)."""
        with self._changed:
            return len(self._queue)

    def encode_one(self, text: str) -> np.ndarray:
        """One text's vector, shape 1 x dimension."""
        slot = _Slot(text)
        with self._changed:
            self._queue.append(slot)
        while True:
            with self._changed:
                while not slot.done and (slot.taken or self._busy >= self._lanes):
                    self._changed.wait()
                if slot.done:
                    break
                batch, self._queue = (
                    self._queue[: self._max_batch],
                    self._queue[self._max_batch :],
                )
                for taken in batch:
                    taken.taken = True
                self._busy += 1
            self._run(batch)
        if slot.error is not None:
            raise slot.error
        assert slot.vector is not None
        return slot.vector

    def _run(self, batch: list[_Slot]) -> None:
        try:
            vectors = self._encode([slot.text for slot in batch])
            for slot, vector in zip(batch, vectors, strict=True):
                slot.vector = vector[None, :]
        except BaseException as error:  # every caller in the batch sees the failure
            for slot in batch:
                slot.error = error
        with self._changed:
            for slot in batch:
                slot.done = True
            self._busy -= 1
            self._changed.notify_all()
