"""Decoding item codes: a prefix trie of the valid codes held as dense tensors, beam search
constrained by it (every output is a real item), and exhaustive scoring of every item's code.

A decoder is seen through one function, ``step_fn(prefixes, level, parents)``: given a batch
of code prefixes ``[n_queries, n_beams, level]`` (level-local tokens), it returns the
log-probability of each token of ``level`` after each prefix, ``[n_queries, n_beams,
level_sizes[level]]``. From level 1 on it also gets ``parents`` [n_queries, n_beams]: the index
of each beam's parent among the previous call's beams (None at level 0), so a decoder keeps a
cache of the previous positions and runs only the new token. The same function serves beam
search and exhaustive scoring (whose beams at level l are all the trie's depth-l prefixes),
so the two score a code identically: the sum over levels of the log-probability of its
token after its prefix.

The trie numbers the distinct prefixes of each length (``node`` ids): depth 0 has the empty
prefix (node 0), depth ``l`` the distinct first-``l``-token prefixes. ``children[l]`` is a
``[n_nodes_l, level_sizes[l]]`` table: the depth-``l+1`` node reached by appending a token, or
the item index after the last level, or -1 where no item has that prefix. With level sizes up
to 256 and catalogues of tens of thousands of items the tables are a few tens of MB (int64).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from semrec.models.generative.codes import ItemCodes

#: ``step_fn(prefixes [B, W, level] long, level, parents [B, W] long | None)
#: -> log-probabilities [B, W, level_sizes[level]]``
StepFn = Callable[[torch.Tensor, int, torch.Tensor | None], torch.Tensor]


@dataclass(frozen=True, eq=False)
class CodeTrie:
    """The prefix trie of a set of item codes, as tensors on one device."""

    level_sizes: tuple[int, ...]
    #: [n_items, n_levels] the codes (row i = item index i)
    codes: torch.Tensor
    #: per level l: [n_nodes_l, level_sizes[l]] child node at depth l+1 (item index after the
    #: last level), -1 where the prefix + token is no item's prefix
    children: tuple[torch.Tensor, ...]
    #: per level l: [n_items] the node id of each item's first-l-token prefix
    node_of_item: tuple[torch.Tensor, ...]
    #: per level l: [n_nodes_l, l] the tokens of each depth-l prefix
    node_prefixes: tuple[torch.Tensor, ...]

    @classmethod
    def from_codes(cls, item_codes: ItemCodes, device: torch.device | str = "cpu") -> CodeTrie:
        codes = item_codes.codes
        n_items, n_levels = codes.shape
        node = np.zeros(n_items, dtype=np.int64)  # depth 0: every item under the root
        children, node_of_item, node_prefixes = [], [], []
        for level, size in enumerate(item_codes.level_sizes):
            n_nodes = int(node.max()) + 1 if n_items else 1
            if level < n_levels - 1:  # the next depth's node: the distinct (node, token) pairs
                _, child = np.unique(node * size + codes[:, level], return_inverse=True)
            else:  # codes are unique: after the last level a (node, token) pair is an item
                child = np.arange(n_items, dtype=np.int64)
            table = np.full((n_nodes, size), -1, dtype=np.int64)
            table[node, codes[:, level]] = child
            first_item = np.zeros(n_nodes, dtype=np.int64)
            first_item[node] = np.arange(n_items)  # any item under a node has its prefix
            children.append(torch.from_numpy(table))
            node_of_item.append(torch.from_numpy(node.copy()))
            node_prefixes.append(torch.from_numpy(codes[first_item, :level].copy()))
            node = child.astype(np.int64).ravel()
        return cls(
            level_sizes=tuple(int(s) for s in item_codes.level_sizes),
            codes=torch.from_numpy(codes.copy()),
            children=tuple(children),
            node_of_item=tuple(node_of_item),
            node_prefixes=tuple(node_prefixes),
        ).to(device)

    def to(self, device: torch.device | str) -> CodeTrie:
        return CodeTrie(
            level_sizes=self.level_sizes,
            codes=self.codes.to(device),
            children=tuple(t.to(device) for t in self.children),
            node_of_item=tuple(t.to(device) for t in self.node_of_item),
            node_prefixes=tuple(t.to(device) for t in self.node_prefixes),
        )

    @property
    def device(self) -> torch.device:
        return self.codes.device

    @property
    def n_items(self) -> int:
        return len(self.codes)

    @property
    def n_levels(self) -> int:
        return len(self.level_sizes)

    def live_children(self, excluded: torch.Tensor) -> list[torch.Tensor]:
        """Per level l, [B, n_nodes_{l+1}] (items after the last level): True where the node
        has at least one item that query b does not exclude (``excluded`` [B, n_items])."""
        allowed = (~excluded).to(torch.float32)
        live = []
        for level in range(1, self.n_levels):
            n_nodes = len(self.node_prefixes[level])
            counts = torch.zeros(len(excluded), n_nodes, device=excluded.device)
            live.append(counts.index_add_(1, self.node_of_item[level], allowed) > 0)
        live.append(~excluded)
        return live


@dataclass(frozen=True, eq=False)
class BeamResult:
    """Per query, ``beam_size`` complete codes, best first. Where fewer items could be
    generated (a small catalogue, or every other item excluded) the rows end with item -1,
    code -1 and score -inf."""

    item_index: torch.Tensor  # [B, beam] long
    codes: torch.Tensor  # [B, beam, n_levels] long
    scores: torch.Tensor  # [B, beam] summed log-probabilities


def constrained_beam_search(
    step_fn: StepFn,
    n_queries: int,
    beam_size: int,
    trie: CodeTrie,
    excluded: torch.Tensor | None = None,
) -> BeamResult:
    """Beam search over ``trie.n_levels`` tokens keeping only prefixes of valid codes.

    At each level every live beam is extended by every token its trie node allows; the
    ``beam_size`` best extensions by total log-probability survive. ``excluded`` ([B, n_items]
    bool) removes items per query, and with them every prefix all of whose items are excluded,
    so no beam is spent on a dead end: the result holds min(beam_size, non-excluded items)
    distinct items per query. With ``beam_size >= n_items`` no valid prefix is ever pruned
    and the search is exact (it equals :func:`exhaustive_scores`' ranking).
    """
    device = trie.device
    batch = n_queries
    live = trie.live_children(excluded) if excluded is not None else None
    nodes = torch.zeros(batch, 1, dtype=torch.long, device=device)
    alive = torch.ones(batch, 1, dtype=torch.bool, device=device)
    scores = torch.zeros(batch, 1, device=device)
    prefixes = torch.zeros(batch, 1, 0, dtype=torch.long, device=device)
    beam = None  # each beam's parent among the previous level's beams
    for level, size in enumerate(trie.level_sizes):
        width = nodes.shape[1]
        log_probs = step_fn(prefixes, level, beam).to(scores.dtype)  # [B, W, V]
        child = trie.children[level][nodes]  # [B, W, V]
        valid = (child >= 0) & alive.unsqueeze(2)
        if live is not None:
            valid &= live[level].gather(1, child.clamp(min=0).view(batch, -1)).view_as(child)
        candidates = torch.where(valid, scores.unsqueeze(2) + log_probs, -torch.inf)
        top_scores, flat = candidates.view(batch, -1).topk(min(beam_size, width * size), dim=1)
        beam, token = flat // size, flat % size
        alive = valid.view(batch, -1).gather(1, flat)
        nodes = torch.where(alive, child.view(batch, -1).gather(1, flat), 0)
        scores = torch.where(alive, top_scores, -torch.inf)
        parent_prefix = prefixes.gather(1, beam.unsqueeze(2).expand(-1, -1, level))
        prefixes = torch.cat([parent_prefix, token.unsqueeze(2)], dim=2)
    # valid codes first (a valid code may score -inf only if step_fn says so), then by score
    order = torch.sort((~alive).to(torch.int8), dim=1, stable=True).indices
    alive, nodes, scores = alive.gather(1, order), nodes.gather(1, order), scores.gather(1, order)
    prefixes = prefixes.gather(1, order.unsqueeze(2).expand_as(prefixes))
    items = torch.where(alive, nodes, -1)
    prefixes = torch.where(alive.unsqueeze(2), prefixes, -1)
    missing = beam_size - items.shape[1]
    if missing > 0:  # fewer candidates than beams in the whole trie
        items = torch.cat([items, items.new_full((batch, missing), -1)], dim=1)
        scores = torch.cat([scores, scores.new_full((batch, missing), -torch.inf)], dim=1)
        prefixes = torch.cat(
            [prefixes, prefixes.new_full((batch, missing, trie.n_levels), -1)], dim=1
        )
    return BeamResult(item_index=items, codes=prefixes, scores=scores)


def exhaustive_scores(step_fn: StepFn, n_queries: int, trie: CodeTrie) -> torch.Tensor:
    """[n_queries, n_items]: the log-probability of every item's full code (teacher-forced),
    the sum over levels of log p(token_l | prefix_<l). Calls ``step_fn`` once per level with
    every distinct prefix of that length as a beam (each the child of a beam of the previous
    call), so its cost is that of decoding the whole trie one token per node: fine for small
    catalogues, and the reference beam search is tested against.
    """
    total = torch.zeros(n_queries, trie.n_items, device=trie.device)
    parents = None
    for level in range(trie.n_levels):
        prefixes = trie.node_prefixes[level].unsqueeze(0).expand(n_queries, -1, -1)
        if level:  # each depth-l node's parent: the depth-(l-1) node of any item under it
            parent = torch.zeros(len(prefixes[0]), dtype=torch.long, device=trie.device)
            parent[trie.node_of_item[level]] = trie.node_of_item[level - 1]
            parents = parent.unsqueeze(0).expand(n_queries, -1)
        log_probs = step_fn(prefixes, level, parents)  # [B, n_nodes, V]
        total += log_probs[:, trie.node_of_item[level], trie.codes[:, level]].to(total.dtype)
    return total
