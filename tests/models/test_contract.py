"""The contract every registered model passes. A new model joins by adding a FAST_PARAMS line.

A key ``name+variant`` runs model ``name`` again with other parameters (e.g. text
initialisation). Models whose ``needs_item_embeddings`` is true get the real text vectors of
the fixture's wines.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from semrec.data.splits import Split
from semrec.errors import ModelError, UnknownUserError
from semrec.models import MODEL_REGISTRY, Query, Recommender, TrainData, load_model
from semrec.models.generative.codes import ItemCodes
from semrec.models.generative.tokenizers import save_codes

# Small hyperparameters so the whole suite stays fast; every registered model must appear.
FAST_PARAMS: dict[str, dict] = {
    "most_pop": {},
    "item_knn": {"n_neighbors": 20, "shrinkage": 5.0, "block_size": 64},
    "ease": {"regularization": 50.0},
    "mf_bpr": {"epochs": 3, "batch_size": 256, "embedding_size": 16, "learning_rate": 1e-2},
    "lightgcn": {"epochs": 2, "batch_size": 256, "embedding_size": 16, "eval_every": 0},
    "ngcf": {"epochs": 2, "batch_size": 256, "embedding_size": 16, "eval_every": 0},
    "ngcf+reference_code": {
        "epochs": 2,
        "batch_size": 256,
        "embedding_size": 16,
        "eval_every": 0,
        "layer": "reference_code",
    },
    "simgcl": {"epochs": 2, "batch_size": 256, "embedding_size": 16, "eval_every": 0},
    "mf_bpr+text": {"epochs": 2, "batch_size": 256, "embedding_size": 16, "item_init": "text"},
    "lightgcn+text": {
        "epochs": 2,
        "batch_size": 256,
        "embedding_size": 16,
        "eval_every": 0,
        "item_init": "text",
    },
    "alpharec": {
        "epochs": 2,
        "batch_size": 256,
        "embedding_size": 16,
        "eval_every": 0,
        "mlp_hidden_size": 32,
        "negatives": 16,
    },
    "lightgcn_concat": {"epochs": 2, "batch_size": 256, "embedding_size": 16, "eval_every": 0},
    "text_knn": {},
    "sasrec": {"epochs": 2, "batch_size": 64, "embedding_size": 16, "eval_every": 0},
    "sasrec+text": {
        "epochs": 2,
        "batch_size": 64,
        "embedding_size": 16,
        "eval_every": 0,
        "item_init": "text",
        "loss": "bce",
    },
    # item codes come from a codes file (the `small_codes_file` fixture), see `fitted`
    "tiger": {
        "epochs": 2,
        "batch_size": 256,
        "embedding_size": 16,
        "n_layers": 1,
        "n_heads": 2,
        "feedforward_size": 32,
        "eval_every": 0,
        "beam_size": 10,
    },
}


def test_every_registered_model_is_covered():
    assert set(MODEL_REGISTRY) == {key.split("+")[0] for key in FAST_PARAMS}


def train_data(model: Recommender, split: Split, item_embeddings: np.ndarray) -> TrainData:
    """The training part, with item text vectors when the model needs them."""
    return TrainData(
        split.train, item_embeddings=item_embeddings if model.needs_item_embeddings else None
    )


@pytest.fixture(scope="module")
def small_codes_file(small_split: Split, tmp_path_factory) -> str:
    """Item codes for the generative models: item i = (i // 20, i % 20), as a codes file."""
    items = np.arange(small_split.train.n_items)
    codes = ItemCodes(np.stack([items // 20, items % 20], axis=1), (20, 20))
    path = tmp_path_factory.mktemp("codes") / "codes.safetensors"
    save_codes(path, codes, item_ids=small_split.train.item_ids)
    return str(path)


@pytest.fixture(scope="module", params=sorted(FAST_PARAMS))
def fitted(
    request, small_split: Split, small_item_embeddings: np.ndarray, small_codes_file: str
) -> Recommender:
    key = request.param
    params = FAST_PARAMS[key]
    if key == "tiger":
        params = {**params, "codes": small_codes_file}
    model = MODEL_REGISTRY[key.split("+")[0]](**params)
    returned = model.fit(train_data(model, small_split, small_item_embeddings))
    assert returned is model
    return model


def _users(split: Split, n: int = 16) -> np.ndarray:
    return np.arange(min(n, split.train.n_users))


def test_score_shape_and_dtype(fitted, small_split):
    scores = fitted.score(Query.users(_users(small_split)))
    assert scores.shape == (len(_users(small_split)), small_split.train.n_items)
    assert scores.dtype == torch.float32
    assert torch.isfinite(scores).all()


def test_recommend_shape_and_order(fitted, small_split):
    top = fitted.recommend(Query.users(_users(small_split)), k=10)
    assert top.item_index.shape == (len(_users(small_split)), 10)
    assert top.scores.shape == top.item_index.shape
    assert (top.scores[:, :-1] >= top.scores[:, 1:]).all()


def test_seen_items_excluded(fitted, small_split):
    users = np.arange(small_split.train.n_users)
    top = fitted.recommend(Query.users(users), k=10).item_index.cpu().numpy()
    seen = small_split.train.user_items
    assert not any(seen[u, top[u]].nnz for u in users)


def test_batch_equals_single_queries(fitted, small_split):
    users = _users(small_split, 8)
    batch = fitted.score(Query.users(users))
    singles = torch.cat([fitted.score(Query.users([u])) for u in users])
    torch.testing.assert_close(batch, singles)


def test_same_seed_same_result(fitted, small_split, small_item_embeddings):
    again = type(fitted)(fitted.config)
    again.fit(train_data(again, small_split, small_item_embeddings))
    users = Query.users(_users(small_split))
    torch.testing.assert_close(fitted.score(users), again.score(users), rtol=0, atol=0)


def test_save_load_gives_identical_scores(fitted, small_split, tmp_path):
    fitted.save(tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    weights = tmp_path / "model" / "weights.safetensors"
    with weights.open("r+b") as file:  # the loaded weights are in memory, not mapped from here
        file.write(bytes(weights.stat().st_size))
    assert type(loaded) is type(fitted)
    assert loaded.config == fitted.config
    users = Query.users(_users(small_split))
    assert torch.equal(fitted.score(users), loaded.score(users))
    assert torch.equal(
        fitted.recommend(users, 10).item_index, loaded.recommend(users, 10).item_index
    )
    fitted.save(tmp_path / "model")  # overwriting an existing save is atomic too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_unknown_user_is_refused_with_its_index(fitted, small_split):
    with pytest.raises(UnknownUserError, match=str(small_split.train.n_users)):
        fitted.score(Query.users([small_split.train.n_users]))


def test_history_query_for_a_new_user(fitted, small_split):
    history = [small_split.train.sequences()[0][:3]]
    if not fitted.accepts_history:
        with pytest.raises(ModelError, match="user_index"):
            fitted.score(Query.histories(history))
        return
    top = fitted.recommend(Query.histories(history), k=5).item_index[0].numpy()
    assert not set(top) & set(history[0].tolist())


def test_corrupt_saved_model_fails_naming_the_file(fitted, tmp_path):
    fitted.save(tmp_path / "model")
    (tmp_path / "model" / "weights.safetensors").write_bytes(b"not tensors")
    with pytest.raises(ModelError, match=r"weights\.safetensors"):
        load_model(tmp_path / "model")
    fitted.save(tmp_path / "model")
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    manifest["config"]["no_such_field"] = 1
    (tmp_path / "model" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match=r"manifest\.json"):
        load_model(tmp_path / "model")
    (tmp_path / "model" / "manifest.json").unlink()
    with pytest.raises(ModelError, match=r"manifest\.json"):
        load_model(tmp_path / "model")


def test_missing_item_embeddings_are_refused_clearly(fitted, small_split):
    if not fitted.needs_item_embeddings:
        return
    with pytest.raises(ModelError, match=f"{fitted.name} needs item text embeddings"):
        type(fitted)(fitted.config).fit(TrainData(small_split.train))
