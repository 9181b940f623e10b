"""Concurrent queries share encode calls (pure logic with a stand-in encoder; the real model's
batched vectors are checked in test_embed.py)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import eventually

from indexer.batching import QueryBatcher


class GatedEncoder:
    """Encodes each text as [len(text)]; the first call waits until the test opens the gate."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gate = threading.Event()

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.batches.append(list(texts))
        if len(self.batches) == 1:
            assert self.gate.wait(timeout=30)
        return np.array([[float(len(t))] for t in texts], dtype=np.float32)


def test_a_lone_query_is_encoded_at_once() -> None:
    encoder = GatedEncoder()
    encoder.gate.set()
    batcher = QueryBatcher(encoder, lanes=1)
    assert batcher.encode_one("flood").tolist() == [[5.0]]
    assert encoder.batches == [["flood"]]


def test_queries_arriving_while_the_lane_is_busy_share_one_encode() -> None:
    encoder = GatedEncoder()
    batcher = QueryBatcher(encoder, lanes=1, max_batch=16)
    texts = ["a" * n for n in range(1, 12)]
    results: dict[str, list[list[float]]] = {}

    def ask(text: str) -> None:
        results[text] = batcher.encode_one(text).tolist()

    first = threading.Thread(target=ask, args=(texts[0],))
    first.start()
    # the lane is busy with the first text
    assert eventually(lambda: len(encoder.batches) == 1, 30, poll=0.001)
    others = [threading.Thread(target=ask, args=(t,)) for t in texts[1:]]
    for thread in others:
        thread.start()
    assert eventually(lambda: batcher.waiting == len(texts) - 1, 30, poll=0.001)
    encoder.gate.set()
    for thread in [first, *others]:
        thread.join(timeout=30)
    assert encoder.batches[0] == [texts[0]] and sorted(encoder.batches[1]) == sorted(texts[1:])
    assert all(results[t] == [[float(len(t))]] for t in texts)


def test_a_failed_encode_reaches_every_caller_in_its_batch() -> None:
    def broken(texts: list[str]) -> np.ndarray:
        raise RuntimeError("model crashed")

    batcher = QueryBatcher(broken, lanes=1)
    with pytest.raises(RuntimeError, match="model crashed"):
        batcher.encode_one("flood")
    assert batcher.waiting == 0
