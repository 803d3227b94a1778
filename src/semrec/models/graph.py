"""Graph collaborative filtering on the user-item bipartite graph: LightGCN, NGCF, SimGCL.

All three propagate embeddings over the normalized adjacency of the training graph

    Â = D^-1/2 A D^-1/2,  A = [[0, R], [Rᵀ, 0]]       (R: the user x item training matrix)

held as a torch CSR tensor, score ⟨e_u, e_i⟩ with the propagated embeddings, and train with
BPR over uniformly drawn negatives (:func:`semrec.training.loop.bpr_epoch`). The positives of
an epoch are, as in the official LightGCN and NGCF code, as many draws of a uniformly chosen
user and one of their items as there are training pairs (``positives="users"``, the default of
both), or every training pair once (``"pairs"``, SimGCL's default as in its reference code
SELFRec). User draws weight every user alike, as the user-averaged metrics do; pair sampling
weights a user by their number of items. On Gowalla (fast CPU recipe, L2 1e-4, 200 epochs)
user draws gave Recall@20 0.1731 against 0.1679 for pairs (benchmarks/README.md).

LightGCN — He et al., "LightGCN: Simplifying and Powering Graph Convolution Network for
Recommendation", SIGIR 2020.

    E⁽ᵏ⁺¹⁾ = Â E⁽ᵏ⁾,  E = (E⁽⁰⁾ + ... + E⁽ᴷ⁾) / (K + 1)
    loss = BPR(E) + weight_decay · (‖e⁽⁰⁾_u‖² + ‖e⁽⁰⁾_i‖² + ‖e⁽⁰⁾_j‖²) / (2 · batch)

The L2 term is on the batch's ego (layer-0) embeddings, as in the official code. Defaults are
the paper's Gowalla settings: 64 dimensions, 3 layers, Adam with learning rate 1e-3, L2 1e-4,
batch 2048, N(0, 0.1²) initialisation (LightGCN-PyTorch).

NGCF — Wang et al., "Neural Graph Collaborative Filtering", SIGIR 2019 (equation 7):

    E⁽ᵏ⁺¹⁾ = LeakyReLU₀.₂( ((Â + I) E⁽ᵏ⁾) W₁ + b₁ + ((Â E⁽ᵏ⁾) ⊙ E⁽ᵏ⁾) W₂ + b₂ )
    E = [E⁽⁰⁾ ‖ norm(E⁽¹⁾) ‖ ... ‖ norm(E⁽ᴷ⁾)]   (concatenation of the row-normalized layers)

with message dropout on each layer's output and node dropout on the adjacency (which the
official code implements as dropout of its nonzero entries, rescaled by 1/(1-p); semrec does
the same). Its L2 term is on the batch's final embeddings, as in the official code. Defaults
are the paper's Gowalla command: 64 dimensions, 3 layers of 64, Adam with learning rate 1e-4,
L2 1e-5, batch 1024, node and message dropout 0.1, 400 epochs, Xavier initialisation of
the user table and of the item table, each with its own bound (the official code's two tables).
The official code (xiangwang1223/neural_graph_collaborative_filtering, NGCF.py, the source of
the paper's numbers) differs from equation 7; ``layer="reference_code"`` follows it:

    E⁽ᵏ⁺¹⁾ = LeakyReLU₀.₂( (Ā E⁽ᵏ⁾) W₁ + b₁ ) + LeakyReLU₀.₂( ((Ā E⁽ᵏ⁾) ⊙ E⁽ᵏ⁾) W₂ + b₂ ),
    Ā = D̃^-1 (A + I)   (its default "norm" adjacency: the mean over a node and its neighbours)

with biases drawn from Xavier's uniform like the weights (the paper's form here starts them
at 0). Its parser also leaves node dropout off unless ``--node_dropout_flag 1`` is given, which
the README's Gowalla command does not; semrec's default keeps the paper's 0.1.

SimGCL — Yu et al., "Are Graph Augmentations Necessary? Simple Graph Contrastive Learning for
Recommendation", SIGIR 2022:

    E⁽ᵏ⁺¹⁾ = Â E⁽ᵏ⁾ + ε · sign(Â E⁽ᵏ⁾) ⊙ normalize(U),  U ~ Uniform[0, 1)   (noisy views only)
    E = (E⁽¹⁾ + ... + E⁽ᴷ⁾) / K                       (the ego layer is left out)
    loss = BPR(clean E) + L2 + λ · (InfoNCE_τ(users of the batch) + InfoNCE_τ(their items))

The two InfoNCE views are two independently perturbed propagations; the users and positive
items of the batch (each once) are contrasted. Defaults are the paper's (λ 0.5, ε 0.1, τ 0.2,
3 layers, 64 dimensions, learning rate 1e-3, batch 2048, L2 1e-4, Xavier initialisation of
the user and the item table each, as the reference code's two tables).
Deviation: the L2 term is LightGCN's (squared norms of the batch's ego embeddings). The
reference code (SELFRec's PyTorch SimGCL) adds weight_decay · (‖U‖_F + ‖P‖_F) / batch instead:
the unsquared Frobenius norms of the batch's final user and positive-item embeddings. For
rows of norm r its gradient per row is 1 / (r √batch) times LightGCN's: about 0.2x at r = 0.1
and batch 2048.
On the LightGCN Gowalla split at these settings, the test accuracy falls from the first epoch
on, and SELFRec's own SimGCL code falls the same way on the same files (benchmarks/README.md,
"SimGCL on Gowalla"); much smaller weights (λ 0.005) help there.

Text initialisation (``item_init="text"``, every model here): the ego item embeddings start
as the PCA of the item text vectors, rescaled to the mean row norm of the model's random
initialisation, and each ego user embedding as the mean of their items' (see
:mod:`semrec.models.mf`); training is unchanged. These are the text-initialised baselines
of the semantic-fusion papers (the AlphaRec paper's "XSimGCL_t" is such a graph model started
from text vectors). The ID+text concatenation baseline is ``lightgcn_concat`` in
:mod:`semrec.models.text`.

The papers train a fixed number of epochs and report the best epoch on the test set; semrec
runs a fixed number of epochs and reports the last one (or early-stops on a validation split
when there is one).
"""

from __future__ import annotations

import warnings
from abc import abstractmethod
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from semrec.errors import ModelError
from semrec.models.base import Query, Recommender, TrainData, register
from semrec.models.mf import BPRConfig, mean_row_norm, text_initial_embeddings
from semrec.training.loop import LoopSettings, Objective, bpr_epoch, run_epochs
from semrec.training.losses import info_nce, l2_penalty


def bipartite_adjacency(user_items: sp.csr_matrix) -> sp.csr_matrix:
    """A = [[0, R], [Rᵀ, 0]]: users first, then items."""
    r = user_items.astype(np.float32)
    return sp.bmat([[None, r], [r.T, None]], format="csr", dtype=np.float32)


def normalized_adjacency(user_items: sp.csr_matrix) -> sp.csr_matrix:
    """D^-1/2 A D^-1/2 of the bipartite graph; users first, then items. Isolated nodes get 0."""
    adjacency = bipartite_adjacency(user_items)
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    inverse_sqrt = np.zeros_like(degree)
    np.power(degree, -0.5, out=inverse_sqrt, where=degree > 0)
    scale = sp.diags(inverse_sqrt)
    normalized = (scale @ adjacency @ scale).tocsr().astype(np.float32)
    normalized.sort_indices()
    return normalized


def mean_adjacency_with_self_loops(user_items: sp.csr_matrix) -> sp.csr_matrix:
    """D̃^-1 (A + I), D̃ the degrees of A + I: each node's mean over itself and its neighbours
    (the default "norm" adjacency of NGCF's reference code). Not symmetric."""
    adjacency = bipartite_adjacency(user_items) + sp.eye(sum(user_items.shape), dtype=np.float32)
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    normalized = (sp.diags(1 / degree) @ adjacency).tocsr().astype(np.float32)
    normalized.sort_indices()
    return normalized


def sparse_tensor(matrix: sp.csr_matrix, device: torch.device) -> torch.Tensor:
    """A torch CSR tensor with int32 indices.

    On CPU, CSR products are ~2x faster than COO, and int32 indices ~2x faster than int64.
    """
    index_type = np.int32 if matrix.nnz < np.iinfo(np.int32).max else np.int64
    return _csr(
        torch.from_numpy(matrix.indptr.astype(index_type)).to(device),
        torch.from_numpy(matrix.indices.astype(index_type)).to(device),
        torch.from_numpy(matrix.data.astype(np.float32)).to(device),
        matrix.shape,
    )


def _csr(indptr: torch.Tensor, indices: torch.Tensor, values: torch.Tensor, shape) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        warnings.filterwarnings("ignore", message="Sparse invariant checks")
        return torch.sparse_csr_tensor(indptr, indices, values, shape, check_invariants=False)


class SparseProduct(torch.autograd.Function):
    """Â @ X, differentiable in X, given Âᵀ (Â itself when symmetric).

    The gradient is Âᵀ @ grad. Torch's own backward of a sparse product transposes Â on every
    call, which makes forward + backward of a 3-layer propagation ~3.5x slower on CPU.
    """

    @staticmethod
    def forward(ctx, adjacency: torch.Tensor, transpose: torch.Tensor, dense: torch.Tensor):
        ctx.transpose = transpose
        return torch.sparse.mm(adjacency, dense)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[None, None, torch.Tensor]:
        return None, None, torch.sparse.mm(ctx.transpose, grad)


class GatherRows(torch.autograd.Function):
    """``table[index]`` along the first dimension, differentiable in ``table``.

    The gradient is added back with ``index_add_``. With torch's own backward of indexing
    (``index_put_`` with accumulation), gathering 65,536 rows of Gowalla's 70,839 x 64 node
    table took 22.4 ms forward + backward on 2 CPU threads, against 3.5 ms this way
    (benchmarks/propagation_speed.py), and a BPR step gathers three rows per training pair.
    """

    @staticmethod
    def forward(ctx, table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(index)
        ctx.table_shape = table.shape
        return table.index_select(0, index)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (index,) = ctx.saved_tensors
        table_grad = grad.new_zeros(ctx.table_shape)
        return table_grad.index_add_(0, index, grad), None


def gather_rows(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table[index]`` for an index of any shape, through :class:`GatherRows`."""
    rows = GatherRows.apply(table, index.reshape(-1))
    return rows.reshape(*index.shape, *table.shape[1:])


def users_and_items(table: torch.Tensor, n_users: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The user rows and the item rows of a node table (users first), as one ``split``: its
    backward writes the two gradients into one new table, where two slices would each fill
    a zero table of the full size and add them."""
    users, items = table.split([n_users, len(table) - n_users])
    return users, items


def xavier_uniform_per_table(weight: torch.Tensor, n_users: int) -> None:
    """Xavier's uniform drawn for the user rows and for the item rows as two tables, as the
    reference codes of NGCF and SimGCL keep them: bound √(6 / (rows + columns)) per table.
    One draw over the joint table would use the bound of all rows, 1.5x (users) and 1.3x
    (items) smaller on Gowalla. The same random numbers either way, in the same order."""
    with torch.no_grad():
        for table in users_and_items(weight, n_users):
            nn.init.xavier_uniform_(table)


@dataclass(frozen=True, eq=False)
class Graph:
    """The normalized adjacency of a training graph on a device, and dropout of its entries.

    ``transpose_order[k]`` is the entry of Â's values that holds entry k of Âᵀ's values (the
    two share one sparsity pattern), so a dropped-out Â gets its transpose without a sort.
    """

    adjacency: torch.Tensor
    transpose: torch.Tensor
    transpose_order: torch.Tensor

    @classmethod
    def build(
        cls,
        user_items: sp.csr_matrix,
        device: torch.device,
        normalization: Literal["symmetric", "mean_with_self_loops"] = "symmetric",
    ) -> Graph:
        """``normalized_adjacency`` (symmetric) or ``mean_adjacency_with_self_loops``."""
        if normalization == "symmetric":
            matrix = normalized_adjacency(user_items)
        else:
            matrix = mean_adjacency_with_self_loops(user_items)
        adjacency = sparse_tensor(matrix, device)
        numbered = sp.csr_matrix(
            (np.arange(1, matrix.nnz + 1, dtype=np.float64), matrix.indices, matrix.indptr),
            shape=matrix.shape,
        )
        order = torch.from_numpy(numbered.T.tocsr().data.astype(np.int64) - 1).to(device)
        if normalization == "symmetric":
            return cls(adjacency, adjacency, order)  # Â is symmetric: its own transpose
        values = adjacency.values()[order]  # both patterns are symmetric: Âᵀ shares Â's
        transpose = _csr(adjacency.crow_indices(), adjacency.col_indices(), values, matrix.shape)
        return cls(adjacency, transpose, order)

    def product(self, dense: torch.Tensor) -> torch.Tensor:
        return SparseProduct.apply(self.adjacency, self.transpose, dense)

    def with_dropout(self, rate: float) -> Graph:
        """A copy whose nonzero entries are each dropped with probability ``rate``, the rest
        rescaled by 1 / (1 - rate) (NGCF's node dropout); drawn from torch's RNG."""
        if rate == 0:
            return self
        values = self.adjacency.values()
        kept = (torch.rand(values.shape, device=values.device) >= rate).to(values.dtype)
        values = values * kept / (1 - rate)
        indptr, indices = self.adjacency.crow_indices(), self.adjacency.col_indices()
        shape = self.adjacency.shape
        return Graph(
            _csr(indptr, indices, values, shape),
            _csr(indptr, indices, values[self.transpose_order], shape),
            self.transpose_order,
        )


class PropagatedEmbeddings(nn.Module):
    """ID embeddings smoothed over the graph by parameter-free layers (LightGCN, SimGCL)."""

    def __init__(
        self, n_users: int, n_items: int, embedding_size: int, n_layers: int, include_ego: bool
    ) -> None:
        super().__init__()
        self.n_users, self.n_layers, self.include_ego = n_users, n_layers, include_ego
        self.embedding = nn.Embedding(n_users + n_items, embedding_size)  # users, then items
        nn.init.normal_(self.embedding.weight, std=0.1)

    def ego(self) -> torch.Tensor:
        """Layer 0: users, then items."""
        return self.embedding.weight

    def propagate(self, graph: Graph, noise: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Final user and item embeddings: the mean of the layers, each perturbed by
        ``noise`` · sign ⊙ a random unit vector when ``noise`` > 0 (SimGCL's views)."""
        layer = self.ego()
        total = layer if self.include_ego else torch.zeros_like(layer)
        for _ in range(self.n_layers):
            layer = graph.product(layer)
            if noise > 0:
                layer = (
                    layer + torch.sign(layer) * F.normalize(torch.rand_like(layer), dim=1) * noise
                )
            total = total + layer
        final = total / (self.n_layers + int(self.include_ego))
        return users_and_items(final, self.n_users)

    def ego_penalty(
        self, users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor
    ) -> torch.Tensor:
        """``l2_penalty`` of the batch's ego rows, summed as each node's squared norm times its
        number of occurrences in the batch: the same value without gathering the rows, which
        at batch 65536 on Gowalla are 2.8 times as many as the nodes."""
        ego = self.ego()
        nodes = torch.cat(
            [users, self.n_users + positives.reshape(-1), self.n_users + negatives.reshape(-1)]
        )
        counts = torch.bincount(nodes, minlength=len(ego)).to(ego.dtype)
        return counts @ (ego * ego).sum(1) / (2 * len(users))


NGCFLayer = Literal["paper", "reference_code"]


class NGCFPropagation(nn.Module):
    """NGCF's embedding layers and layer concatenation: equation 7 of the paper over Â, or
    (``layer="reference_code"``) the official code's layer over D̃^-1 (A + I), which the graph
    passed to :meth:`propagate` must then be (module docstring)."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        embedding_size: int,
        n_layers: int,
        message_dropout: float,
        layer: NGCFLayer = "paper",
    ) -> None:
        super().__init__()
        self.n_users, self.message_dropout, self.layer = n_users, message_dropout, layer
        self.embedding = nn.Embedding(n_users + n_items, embedding_size)
        xavier_uniform_per_table(self.embedding.weight, n_users)
        size = embedding_size  # every layer keeps the embedding size, as in the paper
        self.neighbour_weights = nn.ModuleList(nn.Linear(size, size) for _ in range(n_layers))
        self.interaction_weights = nn.ModuleList(nn.Linear(size, size) for _ in range(n_layers))
        for linear in [*self.neighbour_weights, *self.interaction_weights]:
            nn.init.xavier_uniform_(linear.weight)
            if layer == "paper":
                nn.init.zeros_(linear.bias)
            else:  # the reference code draws its [1, size] biases from Xavier's uniform too
                nn.init.xavier_uniform_(linear.bias.view(1, size))

    def propagate(self, graph: Graph) -> tuple[torch.Tensor, torch.Tensor]:
        layer = self.embedding.weight
        layers = [layer]
        for neighbour, interaction in zip(
            self.neighbour_weights, self.interaction_weights, strict=True
        ):
            side = graph.product(layer)
            if self.layer == "paper":
                layer = F.leaky_relu(neighbour(side + layer) + interaction(side * layer), 0.2)
            else:
                layer = F.leaky_relu(neighbour(side), 0.2) + F.leaky_relu(
                    interaction(side * layer), 0.2
                )
            layer = F.dropout(layer, self.message_dropout, self.training)
            layers.append(F.normalize(layer, dim=1))
        final = torch.cat(layers, dim=1)
        return users_and_items(final, self.n_users)


#: per-pair negatives are read off a dense [batch, items] score matrix up to this many cells
DENSE_BATCH_SCORES = 2**26


class GraphConfig(BPRConfig):
    n_layers: int = Field(3, ge=0)
    epochs: int = Field(1000, ge=1)
    seed: int = 2020
    eval_every: int = Field(20, ge=0, description="epochs between monitor evaluations")
    patience: int | None = Field(None, ge=1, description="early stop after N flat evaluations")
    learning_rate_schedule: Literal["constant", "cosine"] = Field(
        "constant", description="cosine: from learning_rate towards 0 over the epochs"
    )
    positives: Literal["pairs", "users"] = Field(
        "users", description="users: as the official LightGCN and NGCF code (module docstring)"
    )
    loss: Literal["bpr", "softmax"] = Field(
        "bpr", description="softmax: sampled softmax over cosine scores (AlphaRec's loss)"
    )
    negatives: int = Field(256, ge=1, description="sampled negatives per pair (softmax only)")
    temperature: float = Field(0.15, gt=0, description="τ of the sampled softmax")
    shared_negatives: bool = Field(
        False, description="softmax: one set of sampled negatives per batch, not per pair"
    )

    def objective(self) -> Objective:
        if self.loss == "bpr":
            return Objective(positives=self.positives)
        return Objective(
            "softmax", self.negatives, self.temperature, self.shared_negatives, self.positives
        )


class GraphRecommender(Recommender):
    """Training, scoring and persistence shared by the models that propagate over ``Graph``.

    A subclass builds its module (which has ``propagate(graph)`` -> user and item embeddings)
    and the loss terms of one batch beyond BPR.
    """

    Config = GraphConfig

    @property
    def needs_item_embeddings(self) -> bool:
        """True when the items start from their text (``item_init="text"``)."""
        return self.config.item_init == "text"

    @abstractmethod
    def _module(self) -> nn.Module: ...

    def _graph(self, user_items: sp.csr_matrix) -> Graph:
        """The graph the module propagates over: Â (module docstring)."""
        return Graph.build(user_items, self.device)

    @abstractmethod
    def _batch_terms(
        self, users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Positive scores, negative scores, and the model's other loss terms (weighted)."""

    def _fit(self, data: TrainData) -> None:
        config = self.config
        user_items = data.interactions.user_items
        torch.manual_seed(config.seed)
        rng = np.random.default_rng(config.seed)
        self.graph = self._graph(user_items)
        self.module = self._module().to(self.device)
        if config.item_init == "text":
            self._initialise_from_text(data)
        optimizer = torch.optim.Adam(self.module.parameters(), lr=config.learning_rate)

        def train_epoch() -> float:
            self._final = None  # embeddings change: score() must propagate again
            return bpr_epoch(
                self._batch_terms,
                optimizer,
                user_items,
                config.batch_size,
                rng,
                self.device,
                config.objective(),
            )

        settings = LoopSettings.for_config(data.work_dir, config)
        self._final = None
        self.history = run_epochs(
            settings,
            self.module,
            optimizer,
            rng,
            train_epoch,
            data.monitor,
            f"{type(self).__name__} epochs",
        ).history
        self._final = None

    def _initialise_from_text(self, data: TrainData) -> None:
        """Overwrite the ego embeddings (users, then items) with the text initialisation."""
        embedding = getattr(self.module, "embedding", None)
        if not isinstance(embedding, nn.Embedding) or len(embedding.weight) != (
            self.n_users + self.n_items
        ):
            raise ModelError(f"{self.name}: item_init='text' needs ID embeddings to initialise")
        weight = embedding.weight
        users, items = text_initial_embeddings(
            data.require_item_embeddings(self.name),
            data.interactions.user_items,
            self.config.embedding_size,
            mean_row_norm(weight[self.n_users :]),
        )
        with torch.no_grad():
            weight.copy_(torch.cat([users, items]).to(weight.device))

    def _pair_scores(
        self,
        user: torch.Tensor,
        item_final: torch.Tensor,
        positives: torch.Tensor,
        negatives: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores of the batch's positive items [B] and negative items ([B] for BPR, [B, N]
        for the softmax): inner products, or cosine similarities for the sampled softmax.

        ``negatives`` holds item indices: [B] (BPR), [B, N] (per pair) or [1, N] (shared).
        Per-pair negatives are read off the batch's full score matrix when it is small: the
        same numbers, and on CPU much cheaper to differentiate than gathering [B, N, d].
        """
        if self.config.loss == "softmax":
            user, item_final = F.normalize(user, dim=-1), F.normalize(item_final, dim=-1)
        if negatives.dim() == 1:  # BPR: one gather, so one gradient table, for both
            positive, negative = gather_rows(item_final, torch.stack([positives, negatives]))
            return (user * positive).sum(-1), (user * negative).sum(-1)
        positive_scores = (user * gather_rows(item_final, positives)).sum(-1)
        if self.config.shared_negatives:
            negative_scores = user @ gather_rows(item_final, negatives[0]).T
        elif len(user) * len(item_final) <= DENSE_BATCH_SCORES:
            negative_scores = torch.gather(user @ item_final.T, 1, negatives)
        else:
            negative_scores = torch.bmm(
                gather_rows(item_final, negatives), user.unsqueeze(2)
            ).squeeze(2)
        return positive_scores, negative_scores

    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Propagated user and item embeddings (evaluation mode), cached until trained again;
        unit-normalised when the model trains on cosine scores."""
        if self._final is None:
            self.module.eval()
            with torch.no_grad():
                users, items = self.module.propagate(self.graph)
                if self.config.loss == "softmax":
                    users, items = F.normalize(users, dim=1), F.normalize(items, dim=1)
                self._final = users, items
        return self._final

    def score(self, query: Query) -> torch.Tensor:
        self._require_fitted()
        users = torch.from_numpy(self.check_users(query)).to(self.device)
        user_final, item_final = self.final_embeddings()
        return user_final[users] @ item_final.T

    def user_item_vectors(self, query: Query) -> tuple[torch.Tensor, torch.Tensor]:
        """The query's user vectors [B, d] and every item's vector [n_items, d], whose inner
        products are :meth:`score` (serving retrieves from them with a vector index)."""
        self._require_fitted()
        users = torch.from_numpy(self.check_users(query)).to(self.device)
        user_final, item_final = self.final_embeddings()
        return user_final[users], item_final

    def _state(self) -> dict[str, torch.Tensor]:
        return {f"module.{name}": value for name, value in self.module.state_dict().items()}

    def _load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.module = self._module()
        self.module.load_state_dict(
            {k.removeprefix("module."): v for k, v in tensors.items() if k.startswith("module.")}
        )
        self.module.to(self.device).eval()
        self.graph = self._graph(self.seen)
        self._final = None


@register
class LightGCN(GraphRecommender):
    """LightGCN (He et al., SIGIR 2020); see the module docstring for equations and deviations."""

    name = "lightgcn"

    def _module(self) -> PropagatedEmbeddings:
        config = self.config
        return PropagatedEmbeddings(
            self.n_users, self.n_items, config.embedding_size, config.n_layers, include_ego=True
        )

    def _batch_terms(self, users, positives, negatives):
        user_final, item_final = self.module.propagate(self.graph)
        scores = self._pair_scores(gather_rows(user_final, users), item_final, positives, negatives)
        penalty = self.module.ego_penalty(users, positives, negatives)
        return *scores, self.config.weight_decay * penalty


@register
class NGCF(GraphRecommender):
    """NGCF (Wang et al., SIGIR 2019); see the module docstring for equations and deviations."""

    name = "ngcf"

    class Config(GraphConfig):
        n_layers: int = Field(3, ge=1)
        epochs: int = Field(400, ge=1)
        batch_size: int = Field(1024, ge=1)
        learning_rate: float = Field(1e-4, gt=0)
        weight_decay: float = Field(1e-5, ge=0)
        node_dropout: float = Field(0.1, ge=0, lt=1)
        message_dropout: float = Field(0.1, ge=0, lt=1)
        layer: NGCFLayer = Field(
            "paper", description="reference_code: the official code's layer (module docstring)"
        )

    def _module(self) -> NGCFPropagation:
        config = self.config
        return NGCFPropagation(
            self.n_users,
            self.n_items,
            config.embedding_size,
            config.n_layers,
            config.message_dropout,
            config.layer,
        )

    def _graph(self, user_items: sp.csr_matrix) -> Graph:
        if self.config.layer == "paper":
            return super()._graph(user_items)
        return Graph.build(user_items, self.device, "mean_with_self_loops")

    def _batch_terms(self, users, positives, negatives):
        graph = self.graph.with_dropout(self.config.node_dropout)
        user_final, item_final = self.module.propagate(graph)
        user = gather_rows(user_final, users)
        items = gather_rows(item_final, torch.cat([positives, negatives.reshape(-1)]))
        penalty = l2_penalty(user, items[: len(users)], items[len(users) :])
        scores = self._pair_scores(user, item_final, positives, negatives)
        return *scores, self.config.weight_decay * penalty


@register
class SimGCL(GraphRecommender):
    """SimGCL (Yu et al., SIGIR 2022); see the module docstring for equations and deviations."""

    name = "simgcl"

    class Config(GraphConfig):
        epochs: int = Field(100, ge=1)
        positives: Literal["pairs", "users"] = "pairs"  # the reference code (SELFRec)
        contrastive_weight: float = Field(0.5, ge=0, description="λ")
        noise: float = Field(0.1, ge=0, description="ε, the norm of the added noise")
        temperature: float = Field(0.2, gt=0, description="τ of InfoNCE")

    def _module(self) -> PropagatedEmbeddings:
        config = self.config
        module = PropagatedEmbeddings(
            self.n_users, self.n_items, config.embedding_size, config.n_layers, include_ego=False
        )
        xavier_uniform_per_table(module.embedding.weight, self.n_users)
        return module

    def _batch_terms(self, users, positives, negatives):
        config = self.config
        user_final, item_final = self.module.propagate(self.graph)
        extra = config.weight_decay * self.module.ego_penalty(users, positives, negatives)
        if config.contrastive_weight > 0:  # λ 0 (the ablation) skips the two noisy views
            unique_users, unique_items = torch.unique(users), torch.unique(positives)
            users_a, items_a = self.module.propagate(self.graph, noise=config.noise)
            users_b, items_b = self.module.propagate(self.graph, noise=config.noise)
            contrastive = info_nce(
                gather_rows(users_a, unique_users),
                gather_rows(users_b, unique_users),
                config.temperature,
            ) + info_nce(
                gather_rows(items_a, unique_items),
                gather_rows(items_b, unique_items),
                config.temperature,
            )
            extra = extra + config.contrastive_weight * contrastive
        user = gather_rows(user_final, users)
        return *self._pair_scores(user, item_final, positives, negatives), extra
