"""Micro-batching: concurrent requests share batches and get the answers they would alone."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
import scipy.sparse as sp

from semrec.models import Query, TrainData
from semrec.models.baselines import EASE
from semrec.models.mf import MFBPR
from semrec.serving.batching import MicroBatcher, RetrievalBatcher, TopKRequest
from semrec.serving.index import ExactRetrieval


def test_requests_ready_together_share_a_batch_and_later_ones_form_the_next():
    batches: list[list[int]] = []
    later: list[asyncio.Future] = []

    def answer(batch: list[int]) -> list[int]:
        batches.append(batch)
        assert threading.current_thread() is threading.main_thread()  # on the event loop
        if batch == [1, 2]:  # requests arriving while this batch runs queue behind it
            later.extend(asyncio.ensure_future(batcher.submit(x)) for x in (3, 4, 5))
        return [x * 10 for x in batch]

    batcher = MicroBatcher(answer)

    async def scenario() -> list[int]:
        first = await asyncio.gather(batcher.submit(1), batcher.submit(2))
        return first + [await task for task in later]

    assert asyncio.run(scenario()) == [10, 20, 30, 40, 50]
    assert batches == [[1, 2], [3, 4, 5]]
    assert (batcher.batches, batcher.requests) == (2, 5)


def test_a_failing_batch_fails_its_requests_and_the_next_batch_still_runs():
    def answer(batch: list[int]) -> list[int]:
        if 0 in batch:
            raise ValueError("zero")
        return batch

    batcher = MicroBatcher(answer, max_batch=2)

    async def scenario():
        return await asyncio.gather(
            batcher.submit(0), batcher.submit(5), batcher.submit(7), return_exceptions=True
        )

    failed_zero, failed_five, seven = asyncio.run(scenario())
    # 0 and 5 shared the first batch (max_batch 2); 7 came in the next one
    assert isinstance(failed_zero, ValueError) and isinstance(failed_five, ValueError)
    assert seven == 7


def test_max_batch_must_be_positive():
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatcher(lambda batch: batch, max_batch=0)


@pytest.mark.parametrize("model", [EASE(regularization=50.0), MFBPR(epochs=2, seed=1)])
def test_batched_answers_equal_one_query_at_a_time(model, small_split):
    model.fit(TrainData(small_split.train))
    exact = ExactRetrieval(model)
    batcher = RetrievalBatcher(exact)
    users = [0, 3, 3, 17]
    ks = [5, 10, 3, 10]
    extra = [np.array([], dtype=np.int64), np.array([1, 2]), np.array([], dtype=np.int64),
             np.array([0])]  # fmt: skip
    requests = [
        TopKRequest(k, exclude, user=user)
        for user, k, exclude in zip(users, ks, extra, strict=True)
    ]
    history = np.array([4, 9, 11])
    if model.accepts_history:
        requests.append(TopKRequest(7, np.array([], dtype=np.int64), history=history))

    async def all_at_once():
        return await asyncio.gather(*(batcher.top_k(request) for request in requests))

    answers = asyncio.run(all_at_once())
    stats = batcher.stats()
    assert stats["requests"] == len(requests)
    assert 1 <= stats["batches"] <= len(requests)
    for request, answer in zip(requests, answers, strict=True):
        if request.history is None:
            query = Query.users([request.user])
            left_out = model.seen[request.user].indices
        else:
            query, left_out = Query.histories([request.history]), request.history
        items = np.concatenate([left_out, request.exclude]).astype(int)
        row = sp.csr_matrix(
            (np.ones(len(items)), (np.zeros(len(items), dtype=int), items)),
            shape=(1, model.n_items),
        )
        alone = exact.top_k(query, request.k, row)
        assert answer.item_index.tolist() == alone.item_index[0].tolist()
        np.testing.assert_allclose(answer.scores, alone.scores[0].numpy(), rtol=1e-6)
        assert not set(answer.item_index.tolist()) & set(items.tolist())


def test_a_request_needs_exactly_one_of_user_and_history(small_split):
    model = EASE(regularization=50.0).fit(TrainData(small_split.train))
    batcher = RetrievalBatcher(ExactRetrieval(model))
    with pytest.raises(ValueError, match="exactly one"):
        asyncio.run(batcher.top_k(TopKRequest(5, np.array([], dtype=np.int64))))
