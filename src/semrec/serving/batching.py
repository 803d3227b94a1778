"""Micro-batching of retrieval requests: concurrent queries share one matrix product.

Scoring one user reads the whole item matrix (41k x 64 floats for Gowalla) to produce one
row of scores; scoring 32 users reads it once for all of them. :class:`MicroBatcher` queues
the requests and answers them a batch at a time, on the event loop itself: a batch is every
request that reached the queue before the batch started (up to ``max_batch``), so an idle
server answers a lone request at once, with no waiting window, and a busy one batches more.

Batches run on the event loop, not on a worker thread: handing each batch to a thread and
the answers back (two wake-ups, and the GIL passed back and forth) cost half as much CPU as
scoring one Gowalla user, and the GIL lets little else run meanwhile. Requests that arrive
while a batch runs wait in their sockets and form the next batch.

:class:`RetrievalBatcher` is that for ``Retrieval.top_k``: one request is a known user or an
item history, its k and the items to leave out; users and histories go to separate batches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import scipy.sparse as sp
import torch

from semrec.models.base import Query
from semrec.serving.index import Retrieval

Request = TypeVar("Request")
Answer = TypeVar("Answer")

#: the most requests scored together
MAX_BATCH = 256


class MicroBatcher(Generic[Request, Answer]):
    """``await submit(request)`` -> ``answer_batch([... request ...])[its position]``.

    ``answer_batch`` runs on the event loop, one batch at a time, and must return one answer
    per request in order. If it raises, every request of that batch gets the error. The
    batch loop is a task started by the first request that finds the queue idle; it lets
    the requests made ready with it reach the queue first, and ends when the queue is empty.
    """

    def __init__(
        self,
        answer_batch: Callable[[list[Request]], Sequence[Answer]],
        max_batch: int = MAX_BATCH,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.answer_batch = answer_batch
        self.max_batch = max_batch
        self._queue: list[tuple[Request, asyncio.Future]] = []
        self._draining = False
        #: batches answered and requests in them, since the start (for /health)
        self.batches = self.requests = 0
        self._drain_task: asyncio.Task | None = None  # referenced so it is not collected

    async def submit(self, request: Request) -> Answer:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.append((request, future))
        if not self._draining:
            self._draining = True
            self._drain_task = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            # the request handlers already scheduled run first and join this batch
            await asyncio.sleep(0)
            while self._queue:
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
                self.batches += 1
                self.requests += len(batch)
                try:
                    answers = self.answer_batch([request for request, _ in batch])
                except Exception as error:  # handed to every request of the batch
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_, future), answer in zip(batch, answers, strict=True):
                    if not future.done():  # a cancelled request (client gone) is skipped
                        future.set_result(answer)
        finally:
            self._draining = False


@dataclass(frozen=True)
class TopKRequest:
    """One retrieval: a known user (index) or a history (item indices), its k, and the
    items never to return (the user's training items or the history are added to them)."""

    k: int
    exclude: np.ndarray
    user: int | None = None
    history: np.ndarray | None = None


@dataclass(frozen=True)
class RankedItems:
    """One request's answer: item indices and scores, best first (excluded items dropped)."""

    item_index: np.ndarray
    scores: np.ndarray


class RetrievalBatcher:
    """Batched ``retrieval.top_k`` for single-user and single-history requests."""

    def __init__(self, retrieval: Retrieval, max_batch: int = MAX_BATCH) -> None:
        self.retrieval = retrieval
        model = retrieval.model
        self.seen: sp.csr_matrix = model.seen
        self.n_items = model.n_items
        self._users = MicroBatcher(self._answer, max_batch)
        self._histories = MicroBatcher(self._answer, max_batch)

    def stats(self) -> dict[str, int]:
        """Batches answered so far and the requests in them (users and histories)."""
        batchers = (self._users, self._histories)
        return {
            "batches": sum(b.batches for b in batchers),
            "requests": sum(b.requests for b in batchers),
        }

    async def top_k(self, request: TopKRequest) -> RankedItems:
        if (request.user is None) == (request.history is None):
            raise ValueError("a TopKRequest needs exactly one of user and history")
        batcher = self._users if request.history is None else self._histories
        return await batcher.submit(request)

    def _left_out(self, request: TopKRequest) -> np.ndarray:
        if request.history is not None:
            return np.concatenate([request.history, request.exclude])
        seen = self.seen.indices[
            self.seen.indptr[request.user] : self.seen.indptr[request.user + 1]
        ]
        return np.concatenate([seen, request.exclude])

    def _answer(self, requests: list[TopKRequest]) -> list[RankedItems]:
        if requests[0].history is None:
            query = Query.users([r.user for r in requests])
        else:
            query = Query.histories([r.history for r in requests])
        left_out = [self._left_out(r) for r in requests]
        lengths = np.array([len(items) for items in left_out])
        exclude = sp.csr_matrix(
            (
                np.ones(lengths.sum(), dtype=np.float32),
                np.concatenate(left_out).astype(np.int64),
                np.concatenate([[0], np.cumsum(lengths)]),
            ),
            shape=(len(requests), self.n_items),
        )
        k = min(max(r.k for r in requests), self.n_items)
        with torch.no_grad():
            top = self.retrieval.top_k(query, k, exclude)
        items, scores = top.item_index.cpu().numpy(), top.scores.cpu().numpy()
        answers = []
        for row, request in enumerate(requests):
            # a prefix of a longer ranking is the shorter ranking (ties go by item index)
            row_items, row_scores = items[row, : request.k], scores[row, : request.k]
            keep = np.isfinite(row_scores)
            answers.append(RankedItems(row_items[keep], row_scores[keep]))
        return answers
