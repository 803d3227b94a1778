"""TIGER-style generative retrieval: an encoder-decoder Transformer reads a user's history as
item-code tokens and generates the next item's code, decoded by beam search constrained to
the codes of real items.

TIGER — Rajput et al., "Recommender Systems with Generative Retrieval", NeurIPS 2023.

Vocabulary. Every item has a code of ``n_levels`` tokens (:class:`ItemCodes`, made by a
tokenizer such as an RQ-VAE over item text embeddings). Token t of level l is the word
``offset_l + t`` with ``offset_l = 3 + level_sizes[0] + ... + level_sizes[l-1]``; words 0, 1,
2 are pad, bos (the decoder's start) and eos (closes the encoder input), and after the code
words come ``n_user_tokens`` hashed user words (user index modulo ``n_user_tokens``; TIGER
used 2000, the default 0 leaves them out, and a history-only query has no user word).

Encoder input (length ``1 [user] + max_history·n_levels + 1``), right-aligned so the latest
item always sits in the same positions:

    [user] pad … pad  c(i_1)_0 … c(i_1)_{L-1}  …  c(i_n)_0 … c(i_n)_{L-1}  eos

Decoder: bos c_0 … c_{L-2} → predicts c_0 … c_{L-1} of the next item. At step l the softmax
runs over level l's ``level_sizes[l]`` words only (other levels' and special words are
masked out: they are never the right answer there), so

    log p(item | history) = Σ_l log softmax_l(W_l h_l)[c_l],   h_l the decoder state at step l.

Training: teacher forcing, mean cross-entropy over the L tokens, on every prefix of every
training sequence: predict s[t] from s[max(0, t-max_history):t] for t ≥ 1. The encoder skips
the columns that are padding in every row of a batch; on CPU each batch is run as
``LENGTH_GROUPS["cpu"]`` groups of similar history length (the same mean loss and gradient),
so that short histories are not padded to the longest of the batch.

Decoding: :func:`constrained_beam_search` over a prefix trie of the real codes, so every
generated code is an item; the query's history items are removed inside the search (with every
prefix that leads only to them), so a list of exactly k items comes back when the catalogue
has k items left. ``score`` computes the exact log-probability of every item's code
(:func:`exhaustive_scores`, the cost of decoding the whole trie per query); with
``exhaustive_ranking=True`` evaluation ranks by it instead of by beam search (small
catalogues).

Architecture (defaults near TIGER's T5: 4 encoder + 4 decoder layers, model size 128,
feed-forward 1024, dropout 0.1, ReLU, pre-layer-norm with a final norm, as T5). Deviations:

- 4 heads of 32 dimensions: TIGER used 6 heads of 64 (T5 lets heads·d_kv differ from the
  model size; ``nn.MultiheadAttention`` needs ``embedding_size`` divisible by ``n_heads``).
- learned absolute position embeddings instead of T5's relative position buckets; separate
  (untied) output projection per level, restricted softmax (T5: tied, full vocabulary).
- AdamW with a cosine decay (or a constant rate), instead of Adafactor (lr 0.01,
  inverse-sqrt decay, 200k steps of 256).
- the decoder layers are written out (from ``nn.MultiheadAttention``) rather than taken from
  ``nn.TransformerDecoder``: self-attention runs within each beam, cross-attention from all
  beams of a query at once, so beams share the encoder memory instead of copying it W times,
  and decoding is incremental (each layer's inputs of earlier positions are kept and
  reordered with the beams; about half the time of re-decoding every prefix), in beam search
  and in exhaustive scoring alike.

Where the codes come from: ``config.codes`` names a codes file written by
:func:`semrec.models.generative.tokenizers.save_codes`, read at ``fit`` by ``load_codes``
with the training item ids (a file that stores item ids must list exactly the training items,
in index order; one without ids must have one row per training item). Without it, assign
``model.item_codes = ItemCodes(...)`` (row i = training item index i) before ``fit``. The
codes are saved with the model, so a saved model is self-contained.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from semrec.errors import ModelError
from semrec.models.base import (
    ModelConfig,
    Query,
    Recommender,
    TopK,
    TrainData,
    bool_mask,
    register,
)
from semrec.models.generative.codes import ItemCodes
from semrec.models.generative.decoding import (
    CodeTrie,
    StepFn,
    constrained_beam_search,
    exhaustive_scores,
)
from semrec.models.generative.tokenizers import codes_from_tensors, codes_to_tensors, load_codes
from semrec.training.loop import LoopSettings, run_epochs

PAD, BOS, EOS = 0, 1, 2
N_SPECIAL_TOKENS = 3
#: log-probabilities held at once per level while scoring every item (queries x prefixes x V)
SCORE_CELLS = 2**24
#: training batches are split into this many groups of similar history length, by device
#: type: on a CPU compute follows the padded length; elsewhere (one group) small batches cost
#: their kernel launches (benchmarks/tiger_train_speed.py measures both)
LENGTH_GROUPS = {"cpu": 4}


def history_windows(
    items: np.ndarray, starts: np.ndarray, ends: np.ndarray, max_history: int
) -> np.ndarray:
    """[len(ends), max_history]: the last ``max_history`` of ``items[starts[r]:ends[r]]`` per
    row, right-aligned, -1 where the history is shorter."""
    columns = ends[:, None] - max_history + np.arange(max_history)
    inside = columns >= starts[:, None]
    if not len(items):
        return np.full(columns.shape, -1, dtype=np.int64)
    return np.where(inside, items[columns.clip(0, len(items) - 1)], -1).astype(np.int64)


class DecoderLayer(nn.Module):
    """A pre-layer-norm Transformer decoder layer (T5's order: self-attention, cross-attention,
    feed-forward) over beams: ``x`` is [B, W, T, d] (query, beam, position). Self-attention
    runs within each beam; cross-attention sends all W·T positions of a query to its memory
    in one call, so the memory's keys and values are computed once per query, not per beam."""

    def __init__(self, size: int, n_heads: int, feedforward_size: int, dropout: float) -> None:
        super().__init__()
        self.self_attention = nn.MultiheadAttention(size, n_heads, dropout, batch_first=True)
        self.cross_attention = nn.MultiheadAttention(size, n_heads, dropout, batch_first=True)
        self.feedforward = nn.Sequential(
            nn.Linear(size, feedforward_size),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(feedforward_size, size),
        )
        self.self_norm, self.cross_norm, self.feedforward_norm = (nn.LayerNorm(size) for _ in "abc")
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        memory_padding: torch.Tensor,
        causal_mask: torch.Tensor | None,
        earlier: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """New states [B, W, T, d], and the self-attention inputs of all positions so far
        [B, W, T_earlier + T, d]: given back as ``earlier`` with the next positions (which
        then attend to every earlier one and to themselves, causally)."""
        batch, beams, length, size = x.shape
        h = self.self_norm(x)
        seen = h if earlier is None else torch.cat([earlier, h], dim=2)
        keys = seen.reshape(batch * beams, -1, size)
        h = self.self_attention(
            h.reshape(batch * beams, length, size),
            keys,
            keys,
            attn_mask=causal_mask,
            need_weights=False,
        )[0]
        x = x + self.dropout(h.view(batch, beams, length, size))
        h = self.cross_norm(x).reshape(batch, beams * length, size)
        h = self.cross_attention(
            h, memory, memory, key_padding_mask=memory_padding, need_weights=False
        )[0]
        x = x + self.dropout(h.view(batch, beams, length, size))
        return x + self.dropout(self.feedforward(self.feedforward_norm(x))), seen


class CodeSeq2Seq(nn.Module):
    """Encoder-decoder over code words: tensors in, tensors out (the vocabulary is the
    wrapper's). ``level_sizes`` fixes the output projection of each decoder step."""

    def __init__(
        self,
        level_sizes: tuple[int, ...],
        vocabulary_size: int,
        encoder_length: int,
        embedding_size: int,
        n_layers: int,
        n_heads: int,
        feedforward_size: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.output_offsets = np.concatenate([[0], np.cumsum(level_sizes)]).tolist()
        self.token_embedding = nn.Embedding(vocabulary_size, embedding_size)
        self.encoder_position = nn.Embedding(encoder_length, embedding_size)
        self.decoder_position = nn.Embedding(len(level_sizes), embedding_size)
        encoder_layer = nn.TransformerEncoderLayer(
            embedding_size,
            n_heads,
            feedforward_size,
            dropout,
            activation="relu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            encoder_layer, n_layers, norm=nn.LayerNorm(embedding_size), enable_nested_tensor=False
        )
        self.decoder_layers = nn.ModuleList(
            DecoderLayer(embedding_size, n_heads, feedforward_size, dropout)
            for _ in range(n_layers)
        )
        self.decoder_norm = nn.LayerNorm(embedding_size)
        self.output = nn.Linear(embedding_size, int(sum(level_sizes)), bias=False)
        self.dropout = nn.Dropout(dropout)

    def encode(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Memory [B, S', d] of encoder words [B, S], and its padding mask [B, S']: the
        columns that are padding in every row are left out (they are masked keys, so the
        other positions' states are the same without them), and each kept column keeps its
        position embedding. A batch of short histories thus costs what its longest one does,
        not ``max_history``."""
        used = (tokens != PAD).any(0)
        positions = used.nonzero().squeeze(1)
        if len(positions) < tokens.shape[1]:
            tokens = tokens[:, positions]
        padding = tokens == PAD
        x = self.dropout(self.token_embedding(tokens) + self.encoder_position(positions))
        return self.encoder(x, src_key_padding_mask=padding), padding

    def decode(
        self, memory: torch.Tensor, memory_padding: torch.Tensor, tokens: torch.Tensor
    ) -> torch.Tensor:
        """Decoder states [B, W, T, d] of W beams of decoder words [B, W, T] per query."""
        length = tokens.shape[2]
        positions = torch.arange(length, device=tokens.device)
        causal_mask = torch.ones(length, length, dtype=torch.bool, device=tokens.device).triu(1)
        x = self.dropout(self.token_embedding(tokens) + self.decoder_position(positions))
        for layer in self.decoder_layers:
            x = layer(x, memory, memory_padding, causal_mask)[0]
        return self.decoder_norm(x)

    def decode_next(
        self,
        memory: torch.Tensor,
        memory_padding: torch.Tensor,
        tokens: torch.Tensor,
        earlier: list[torch.Tensor] | None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Incremental :meth:`decode`: the state [B, W, d] after one more decoder word per beam
        ([B, W]), given each layer's self-attention inputs of the beam's earlier positions
        (None at the first position); returns them extended by the new position."""
        position = 0 if earlier is None else earlier[0].shape[2]
        x = self.token_embedding(tokens.unsqueeze(2)) + self.decoder_position.weight[position]
        x = self.dropout(x)
        seen = []
        for index, layer in enumerate(self.decoder_layers):
            x, layer_seen = layer(
                x, memory, memory_padding, None, None if earlier is None else earlier[index]
            )
            seen.append(layer_seen)
        return self.decoder_norm(x).squeeze(2), seen

    def level_logits(self, hidden: torch.Tensor, level: int) -> torch.Tensor:
        """Logits [..., level_sizes[level]] over level ``level``'s words only."""
        start, end = self.output_offsets[level], self.output_offsets[level + 1]
        return F.linear(hidden, self.output.weight[start:end])

    def loss(
        self, encoder_tokens: torch.Tensor, decoder_tokens: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        """Teacher-forced cross-entropy: decoder words [N, L] (bos, c_0 … c_{L-2}) predict the
        level-local tokens ``targets`` [N, L]; the mean over the N·L predictions."""
        memory, padding = self.encode(encoder_tokens)
        hidden = self.decode(memory, padding, decoder_tokens.unsqueeze(1)).squeeze(1)
        losses = [
            F.cross_entropy(self.level_logits(hidden[:, level], level), targets[:, level])
            for level in range(targets.shape[1])
        ]
        return torch.stack(losses).mean()


class TigerConfig(ModelConfig):
    codes: str | None = Field(
        None, description="item-codes file (safetensors); else set model.item_codes before fit"
    )
    max_history: int = Field(20, ge=1, description="latest history items the encoder reads")
    n_user_tokens: int = Field(0, ge=0, description="hashed user words (TIGER: 2000)")
    embedding_size: int = Field(128, ge=1, description="model size d")
    n_layers: int = Field(4, ge=1, description="encoder layers, and as many decoder layers")
    n_heads: int = Field(4, ge=1)
    feedforward_size: int = Field(1024, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    epochs: int = Field(200, ge=1)
    batch_size: int = Field(256, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0, description="AdamW's decoupled weight decay")
    learning_rate_schedule: Literal["constant", "cosine"] = "cosine"
    seed: int = 2023
    eval_every: int = Field(10, ge=0, description="epochs between monitor evaluations")
    patience: int | None = Field(None, ge=1, description="early stop after N flat evaluations")
    beam_size: int = Field(20, ge=1, description="beams (at least k are used for a top-k list)")
    exhaustive_ranking: bool = Field(
        False, description="rank by every item's exact log-probability instead of beam search"
    )

    @model_validator(mode="after")
    def _heads_divide_size(self) -> TigerConfig:
        if self.embedding_size % self.n_heads:
            raise ValueError(
                f"embedding_size {self.embedding_size} is not divisible by n_heads {self.n_heads}"
            )
        return self


@register
class Tiger(Recommender):
    """TIGER (Rajput et al., NeurIPS 2023): generative retrieval over item codes; see the
    module docstring for the vocabulary, training, decoding and deviations."""

    name = "tiger"
    Config = TigerConfig
    accepts_history = True

    def __init__(self, config: TigerConfig | None = None, **params) -> None:
        super().__init__(config, **params)
        #: the item codes: set before fit (when config.codes is None), or read from the file
        self.item_codes: ItemCodes | None = None

    @property
    def scores_all_items(self) -> bool:
        """Evaluation ranks by ``score`` (exhaustive) or by the generated lists (beam search)."""
        return self.config.exhaustive_ranking

    # --- codes and vocabulary ----------------------------------------------------------
    def _use_codes(self, item_codes: ItemCodes) -> None:
        self.item_codes = item_codes
        self.trie = CodeTrie.from_codes(item_codes, self.device)
        level_sizes = np.asarray(item_codes.level_sizes)
        offsets = N_SPECIAL_TOKENS + np.concatenate([[0], np.cumsum(level_sizes)[:-1]])
        self.code_offsets = torch.from_numpy(offsets).to(self.device)
        #: [n_items, L] each item's code as vocabulary words
        self.item_words = self.trie.codes + self.code_offsets
        self.user_offset = N_SPECIAL_TOKENS + int(level_sizes.sum())

    def _codes_for_fit(self, data: TrainData) -> ItemCodes:
        if self.config.codes is not None:
            item_codes = load_codes(Path(self.config.codes), data.interactions.item_ids)
        elif self.item_codes is not None:
            item_codes = self.item_codes
        else:
            raise ModelError(
                f"{self.name} needs item codes: set the model's `codes` parameter to a codes "
                "file, or assign model.item_codes = ItemCodes(...) before fit"
            )
        if item_codes.n_items != data.interactions.n_items:
            raise ModelError(
                f"{self.name}: the item codes cover {item_codes.n_items} items, the training "
                f"data has {data.interactions.n_items}"
            )
        return item_codes

    def _module(self) -> CodeSeq2Seq:
        config, level_sizes = self.config, self.item_codes.level_sizes
        encoder_length = config.max_history * len(level_sizes) + 1 + int(config.n_user_tokens > 0)
        return CodeSeq2Seq(
            level_sizes,
            self.user_offset + config.n_user_tokens,
            encoder_length,
            config.embedding_size,
            config.n_layers,
            config.n_heads,
            config.feedforward_size,
            config.dropout,
        )

    def _encoder_tokens(self, windows: torch.Tensor, users: torch.Tensor | None) -> torch.Tensor:
        """Encoder words [B, S] of history windows [B, max_history] (-1 = none) and user
        indices [B] (or None: no user word)."""
        words = self.item_words[windows.clamp(min=0)]  # [B, H, L]
        words = torch.where(windows.unsqueeze(2) >= 0, words, PAD).flatten(1)
        parts = [words, torch.full_like(words[:, :1], EOS)]
        if self.config.n_user_tokens:
            user_words = (
                torch.full_like(words[:, 0], PAD)
                if users is None
                else self.user_offset + users % self.config.n_user_tokens
            )
            parts.insert(0, user_words.unsqueeze(1))
        return torch.cat(parts, dim=1)

    def _decoder_tokens(self, prefixes: torch.Tensor) -> torch.Tensor:
        """Decoder words [..., l+1] (bos, then the words) of level-local prefixes [..., l]."""
        level = prefixes.shape[-1]
        bos = prefixes.new_full((*prefixes.shape[:-1], 1), BOS)
        return torch.cat([bos, prefixes + self.code_offsets[:level]], dim=-1)

    # --- training ----------------------------------------------------------------------
    def _fit(self, data: TrainData) -> None:
        config = self.config
        self._use_codes(self._codes_for_fit(data))
        self._store_sequences(data)
        torch.manual_seed(config.seed)
        rng = np.random.default_rng(config.seed)
        # every prefix of every sequence: predict item p from the items before it (same user)
        n_events = len(self.sequence_items)
        user_of_event = np.repeat(np.arange(self.n_users), np.diff(self.sequence_indptr))
        starts = self.sequence_indptr[user_of_event]
        targets = np.flatnonzero(np.arange(n_events) > starts)
        if not len(targets):
            raise ModelError(f"{self.name}: no user has two training items to learn from")
        windows = history_windows(self.sequence_items, starts[targets], targets, config.max_history)
        windows = torch.from_numpy(windows).to(self.device)
        target_items = torch.from_numpy(self.sequence_items[targets]).to(self.device)
        target_users = torch.from_numpy(user_of_event[targets]).to(self.device)
        history_lengths = (windows >= 0).sum(1)
        groups = LENGTH_GROUPS.get(self.device.type, 1)
        self.module = self._module().to(self.device)
        optimizer = torch.optim.AdamW(
            self.module.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
        n_examples = len(targets)

        def train_epoch() -> float:
            order = torch.from_numpy(rng.permutation(n_examples)).to(self.device)
            total = torch.zeros((), device=self.device)
            batches = range(0, n_examples, config.batch_size)
            for start in batches:
                batch = order[start : start + config.batch_size]
                optimizer.zero_grad(set_to_none=True)
                # the batch's mean loss, as a share-weighted sum over groups of similar
                # history length (each group's encoder input is as long as its longest)
                batch = batch[history_lengths[batch].argsort()]
                for group in batch.tensor_split(min(groups, len(batch))):  # none empty
                    codes = self.trie.codes[target_items[group]]  # [n, L] level-local tokens
                    loss = self.module.loss(
                        self._encoder_tokens(windows[group], target_users[group]),
                        self._decoder_tokens(codes[:, :-1]),
                        codes,
                    ) * (len(group) / len(batch))
                    loss.backward()
                    total += loss.detach()
                optimizer.step()
            return total.item() / len(batches)

        settings = LoopSettings.for_config(data.work_dir, config)
        self.history = run_epochs(
            settings, self.module, optimizer, rng, train_epoch, data.monitor, "TIGER epochs"
        ).history

    def _store_sequences(self, data: TrainData) -> None:
        """Each user's training items in time order (CSR-like), for user-only queries."""
        x = data.interactions
        self.sequence_items = x.item_index[x.time_order].astype(np.int64)
        counts = np.bincount(x.user_index, minlength=x.n_users)
        self.sequence_indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    # --- queries -----------------------------------------------------------------------
    def _query_inputs(self, query: Query) -> tuple[torch.Tensor, torch.Tensor | None]:
        """History windows [B, max_history] and user indices [B] (None when unknown)."""
        if query.history is None:
            users = self.check_users(query)
            items = self.sequence_items
            starts, ends = self.sequence_indptr[users], self.sequence_indptr[users + 1]
        else:
            users = query.user_index
            lengths = np.array([len(h) for h in query.history], dtype=np.int64)
            items = (
                np.concatenate(query.history).astype(np.int64)
                if lengths.sum()
                else np.empty(0, dtype=np.int64)
            )
            if len(items) and (items.min() < 0 or items.max() >= self.n_items):
                raise ModelError(
                    f"{self.name}: history holds item indices outside 0..{self.n_items - 1}"
                )
            ends = np.cumsum(lengths)
            starts = ends - lengths
        windows = history_windows(items, starts, ends, self.config.max_history)
        user_tensor = None if users is None else torch.from_numpy(np.asarray(users)).to(self.device)
        return torch.from_numpy(windows).to(self.device), user_tensor

    def _step_fn(self, memory: torch.Tensor, memory_padding: torch.Tensor) -> StepFn:
        """The decoder as :mod:`decoding` sees it, for queries whose memory is given. It
        decodes incrementally: each layer's inputs of the earlier positions are kept from the
        previous call and reordered to the new beams by ``parents``, so a step costs one
        position per beam instead of the whole prefix.
        """
        cache: dict[str, list[torch.Tensor]] = {}

        def step(prefixes: torch.Tensor, level: int, parents: torch.Tensor | None) -> torch.Tensor:
            batch, beams, _ = prefixes.shape
            if level == 0:
                words, earlier = prefixes.new_full((batch, beams), BOS), None
            else:
                words = prefixes[:, :, -1] + self.code_offsets[level - 1]
                rows = torch.arange(batch, device=parents.device).unsqueeze(1)
                earlier = [layer_seen[rows, parents] for layer_seen in cache["seen"]]
            hidden, cache["seen"] = self.module.decode_next(memory, memory_padding, words, earlier)
            return self.module.level_logits(hidden, level).log_softmax(-1)

        return step

    def _encode(self, query: Query) -> tuple[torch.Tensor, torch.Tensor]:
        windows, users = self._query_inputs(query)
        return self.module.encode(self._encoder_tokens(windows, users))

    @torch.no_grad()
    def score(self, query: Query) -> torch.Tensor:
        """Exact log-probability [B, n_items] of every item's code: decodes the whole trie
        per query (cost ~ number of distinct code prefixes), so meant for small catalogues;
        evaluation ranks by beam search unless ``exhaustive_ranking`` is set."""
        self._require_fitted()
        self.module.eval()
        memory, padding = self._encode(query)
        widest = max(
            len(p) * size
            for p, size in zip(self.trie.node_prefixes, self.trie.level_sizes, strict=True)
        )
        chunk = max(1, SCORE_CELLS // widest)
        scores = [
            exhaustive_scores(
                self._step_fn(memory[start : start + chunk], padding[start : start + chunk]),
                len(memory[start : start + chunk]),
                self.trie,
            )
            for start in range(0, len(memory), chunk)
        ]
        return torch.cat(scores) if scores else torch.zeros(0, self.n_items, device=self.device)

    @torch.no_grad()
    def recommend(self, query: Query, k: int, exclude_seen: bool = True) -> TopK:
        """The top-k generated items (beam search with max(beam_size, k) beams), best first by
        log-probability; the history (or the user's training items) excluded when asked."""
        if self.config.exhaustive_ranking:
            return super().recommend(query, k, exclude_seen)
        self._require_fitted()
        self.module.eval()
        k = min(k, self.n_items)
        excluded = bool_mask(self.history_matrix(query), self.device) if exclude_seen else None
        memory, padding = self._encode(query)
        result = constrained_beam_search(
            self._step_fn(memory, padding),
            len(query),
            max(self.config.beam_size, k),
            self.trie,
            excluded,
        )
        items, scores = result.item_index[:, :k], result.scores[:, :k]
        missing = items < 0
        if missing.any():  # every other item excluded: fill with unlisted items at -inf
            listed = torch.zeros(len(items), self.n_items, dtype=torch.int32, device=self.device)
            listed.scatter_add_(1, items.clamp(min=0), (~missing).to(torch.int32))
            unlisted = torch.sort((listed > 0).to(torch.int8), dim=1, stable=True).indices
            rank = (missing.cumsum(1) - 1).clamp(min=0)
            items = torch.where(missing, unlisted.gather(1, rank), items)
        return TopK(item_index=items, scores=scores)

    # --- persistence -------------------------------------------------------------------
    def _state(self) -> dict[str, torch.Tensor]:
        tensors = {f"module.{k}": v for k, v in self.module.state_dict().items()}
        tensors.update(
            {k: torch.from_numpy(v) for k, v in codes_to_tensors(self.item_codes).items()}
        )
        tensors["sequences.indptr"] = torch.from_numpy(self.sequence_indptr)
        tensors["sequences.items"] = torch.from_numpy(self.sequence_items)
        return tensors

    def _load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        item_codes = codes_from_tensors(tensors, source={"saved_with": self.name})
        if item_codes.n_items != self.n_items:
            raise ValueError(f"codes cover {item_codes.n_items} items, not {self.n_items}")
        self._use_codes(item_codes)
        self.sequence_indptr = tensors["sequences.indptr"].numpy()
        self.sequence_items = tensors["sequences.items"].numpy()
        if len(self.sequence_indptr) != self.n_users + 1:
            raise ValueError(f"sequences.indptr has {len(self.sequence_indptr)} entries")
        self.module = self._module()
        self.module.load_state_dict(
            {k.removeprefix("module."): v for k, v in tensors.items() if k.startswith("module.")}
        )
        self.module.to(self.device).eval()
