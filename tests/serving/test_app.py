"""The HTTP API (FastAPI's TestClient) over saved models: every endpoint and error path, the
round trip train -> save -> serve -> recommend, FAISS retrieval, batch top-k."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from semrec.cli import app as cli
from semrec.errors import ModelError, SemrecError
from semrec.experiment import load_run
from semrec.models import Query, TrainData, load_model, top_k
from semrec.models.alpharec import AlphaRec
from semrec.models.graph import LightGCN
from semrec.serving.app import create_app, load_served
from semrec.serving.index import ExactRetrieval, FaissRetrieval, choose_retrieval, measure_recall

CONFIGS = Path(__file__).parents[2] / "configs"
KEY = "s3cret-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
runner = CliRunner()


def invoke(*args):
    return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def ease_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    result = invoke(
        "train", "-c", CONFIGS / "xwines-ease.yaml", "--set", f"output.dir={out}",
        "--set", "model.params.regularization=100",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out / "xwines-ease"


@pytest.fixture(scope="module")
def ease_served(ease_run):
    return load_served(ease_run)


@pytest.fixture(scope="module")
def client(ease_served) -> TestClient:
    return TestClient(create_app(ease_served, api_key=KEY))


@pytest.fixture(scope="module")
def lightgcn_dir(small_split, tmp_path_factory) -> Path:
    model = LightGCN(epochs=1, embedding_size=16, n_layers=2, batch_size=512, eval_every=0)
    path = tmp_path_factory.mktemp("lightgcn") / "model"
    model.fit(TrainData(small_split.train)).save(path)
    return path


@pytest.fixture(scope="module")
def alpharec_dir(small_split, small_item_embeddings, tmp_path_factory) -> Path:
    model = AlphaRec(
        epochs=1, mlp_hidden_size=32, embedding_size=16, negatives=16, batch_size=1024,
        eval_every=0,
    )  # fmt: skip
    model.fit(TrainData(small_split.train, item_embeddings=small_item_embeddings))
    path = tmp_path_factory.mktemp("alpharec") / "model"
    model.save(path)
    return path


def post(client, path, body, headers=AUTH):
    return client.post(path, json=body, headers=headers)


def ids_of(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["item_id"] for item in response.json()["items"]]


def a_user(served) -> str:
    return str(served.model.user_ids[3])


# --- /health, auth, docs ----------------------------------------------------------------
def test_health_needs_no_key_and_describes_the_model(client, ease_served):
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["model"] == "ease"
    assert body["n_items"] == ease_served.model.n_items and body["catalogue"] is True
    assert body["retrieval"]["kind"] == "exact" and body["text"] is False


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": ""},
    ],
)
def test_every_data_endpoint_needs_the_key(client, ease_served, headers):
    user, item = a_user(ease_served), str(ease_served.model.item_ids[0])
    for response in (
        client.get(f"/items/{item}", headers=headers),
        post(client, "/recommend", {"user_id": user}, headers),
        post(client, "/similar", {"item_id": item}, headers),
    ):
        assert response.status_code == 401, response.text
        assert "API key" in response.json()["detail"]
        assert response.headers["www-authenticate"] == "Bearer"


def test_without_a_key_the_api_is_open(ease_served):
    open_client = TestClient(create_app(ease_served))
    assert len(ids_of(post(open_client, "/recommend", {"user_id": a_user(ease_served)}, {}))) == 10


def test_openapi_docs_are_served(client):
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/health", "/items/{item_id}", "/recommend", "/similar"} <= set(schema["paths"])
    for path, fields in (("/recommend", {"user_id", "history", "text"}), ("/similar", {"item_id"})):
        body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        assert fields | {"k", "exclude"} <= set(body["schema"]["properties"])


# --- /items -----------------------------------------------------------------------------
def test_item_details_and_unknown_item(client, ease_served):
    item = str(ease_served.model.item_ids[0])
    response = client.get(f"/items/{item}", headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    assert body["item_id"] == item and "—" in body["title"] and body["fields"]
    response = client.get("/items/no-such-wine", headers=AUTH)
    assert response.status_code == 404 and "no-such-wine" in response.json()["detail"]


# --- /recommend -------------------------------------------------------------------------
def test_recommend_for_a_known_user_excludes_seen_items(client, ease_served):
    model, user = ease_served.model, a_user(ease_served)
    response = post(client, "/recommend", {"user_id": user, "k": 7})
    items = ids_of(response)
    assert len(items) == 7 and response.json()["model"] == "ease"
    assert all(item["title"] for item in response.json()["items"])
    scores = [item["score"] for item in response.json()["items"]]
    assert scores == sorted(scores, reverse=True)
    index = model.user_ids.tolist().index(user)
    seen = set(model.item_ids[model.seen[index].indices].tolist())
    assert not seen & set(items)
    expected = model.recommend(Query.users([index]), 7).item_index[0].numpy()
    assert items == [str(model.item_ids[i]) for i in expected]


def test_user_ids_may_be_json_numbers(client, ease_served):
    user = a_user(ease_served)
    assert ids_of(post(client, "/recommend", {"user_id": int(user)})) == ids_of(
        post(client, "/recommend", {"user_id": user})
    )


def test_round_trip_equals_the_recommend_command(client, ease_run, ease_served):
    user = a_user(ease_served)
    result = invoke("recommend", ease_run, "--user", user, "--k", 5)
    assert result.exit_code == 0, result.output
    from_cli = [
        cells[2].strip()
        for line in result.output.splitlines()
        if len(cells := line.split("│")) > 3 and cells[1].strip().isdigit()
    ]
    assert len(from_cli) == 5
    assert ids_of(post(client, "/recommend", {"user_id": user, "k": 5})) == from_cli


def test_recommend_for_a_history_of_a_user_never_seen(client, ease_served):
    model = ease_served.model
    history = [str(model.item_ids[i]) for i in (0, 5, 9)]
    items = ids_of(post(client, "/recommend", {"history": history, "k": 5}))
    assert len(items) == 5 and not set(history) & set(items)
    query = Query.histories([[0, 5, 9]])
    expected = model.recommend(query, 5).item_index[0].numpy()
    assert items == [str(model.item_ids[i]) for i in expected]


def test_exclude_leaves_items_out(client, ease_served):
    user = a_user(ease_served)
    first = ids_of(post(client, "/recommend", {"user_id": user, "k": 5}))
    again = ids_of(post(client, "/recommend", {"user_id": user, "k": 5, "exclude": first[:2]}))
    assert not set(first[:2]) & set(again) and again[:3] == first[2:]


def test_unknown_user_is_404_naming_the_id(client):
    response = post(client, "/recommend", {"user_id": "ghost-42"})
    assert response.status_code == 404 and "ghost-42" in response.json()["detail"]


@pytest.mark.parametrize("k", [0, -1, 1001, "ten", 2.5])
def test_out_of_range_k_is_422_naming_the_field(client, ease_served, k):
    response = post(client, "/recommend", {"user_id": a_user(ease_served), "k": k})
    assert response.status_code == 422
    assert any(error["loc"][-1] == "k" for error in response.json()["detail"])


def test_k_above_the_catalogue_returns_every_unseen_item(lightgcn_dir):
    served = load_served(lightgcn_dir)
    client = TestClient(create_app(served))
    user = str(served.model.user_ids[0])
    items = ids_of(post(client, "/recommend", {"user_id": user, "k": 1000}, {}))
    assert len(items) == served.model.n_items - served.model.seen[0].nnz


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, None),
        ({"user_id": "1", "history": ["1"]}, None),
        ({"user_id": "1", "colour": "red"}, "colour"),
        ({"history": "not-a-list"}, "history"),
        ({"history": ["no-such-item"]}, "history"),
        ({"user_id": None, "history": None}, None),
        ({"text": ""}, "text"),
    ],
)
def test_malformed_requests_are_422(client, body, field):
    response = post(client, "/recommend", body)
    assert response.status_code == 422, response.text
    if field is not None:
        assert field in json.dumps(response.json()["detail"])


def test_unknown_exclude_item_is_422(client, ease_served):
    response = post(client, "/recommend", {"user_id": a_user(ease_served), "exclude": ["nope"]})
    assert response.status_code == 422 and "nope" in response.text and "exclude" in response.text


def test_malformed_json_is_422(client):
    response = client.post(
        "/recommend", content=b'{"user_id": ', headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


def test_text_on_a_model_without_text_is_422(client, ease_served):
    response = post(client, "/recommend", {"text": "a dry white"})
    assert response.status_code == 422 and "ease does not read text" in response.text
    response = post(client, "/similar", {"text": "a dry white"})
    assert response.status_code == 422 and "ease does not read text" in response.text


def test_history_on_a_user_only_model_is_422(lightgcn_dir):
    served = load_served(lightgcn_dir)
    client = TestClient(create_app(served))
    response = post(client, "/recommend", {"history": [str(served.model.item_ids[0])]}, {})
    assert response.status_code == 422 and "known users only" in response.text


def test_bodies_over_the_limit_are_413(ease_served):
    small = TestClient(create_app(ease_served, api_key=KEY, max_body_bytes=200))
    history = [str(i) for i in ease_served.model.item_ids[:100]]
    response = post(small, "/recommend", {"history": history})
    assert response.status_code == 413

    def chunks():  # no Content-Length: the streamed body is counted
        yield b'{"history": ['
        for item in history:
            yield f'"{item}",'.encode()
        yield b'"x"]}'

    response = small.post(
        "/recommend", content=chunks(), headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert post(small, "/recommend", {"user_id": a_user(ease_served)}).status_code == 200


# --- /similar ---------------------------------------------------------------------------
def test_similar_items_from_history_scores(client, ease_served):
    model = ease_served.model
    item = str(model.item_ids[4])
    items = ids_of(post(client, "/similar", {"item_id": item, "k": 5}))
    assert len(items) == 5 and item not in items
    expected = model.recommend(Query.histories([[4]]), 5).item_index[0].numpy()
    assert items == [str(model.item_ids[i]) for i in expected]


def test_similar_items_from_item_vectors_are_cosine(lightgcn_dir):
    served = load_served(lightgcn_dir)
    client = TestClient(create_app(served))
    items = ids_of(post(client, "/similar", {"item_id": str(served.model.item_ids[2]), "k": 3}, {}))
    _, vectors = served.model.user_item_vectors(Query.users([0]))
    unit = torch.nn.functional.normalize(vectors, dim=1)
    cosine = unit[2:3] @ unit.T
    cosine[0, 2] = -torch.inf
    assert items == [str(served.model.item_ids[i]) for i in top_k(cosine, 3).item_index[0]]


def test_similar_errors(client):
    assert post(client, "/similar", {"item_id": "nope"}).status_code == 404
    assert post(client, "/similar", {}).status_code == 422
    assert post(client, "/similar", {"item_id": "1", "text": "x"}).status_code == 422
    assert post(client, "/similar", {"item_id": "1", "k": 0}).status_code == 422


# --- text models -----------------------------------------------------------------------
def test_text_intentions_with_a_text_model(alpharec_dir, small_item_embeddings):
    vector = small_item_embeddings[[7]]
    served = load_served(alpharec_dir, text_encoder=lambda texts: vector)
    client = TestClient(create_app(served))
    model = served.model
    items = ids_of(post(client, "/recommend", {"text": "a bold red", "k": 5}, {}))
    expected = top_k(model.score_intention(vector), 5).item_index[0].numpy()
    assert items == [str(model.item_ids[i]) for i in expected]
    user = str(model.user_ids[0])
    mixed = ids_of(post(client, "/recommend", {"text": "a bold red", "user_id": user}, {}))
    assert not set(model.item_ids[model.seen[0].indices].tolist()) & set(mixed)
    assert ids_of(post(client, "/similar", {"text": "a bold red", "k": 5}, {})) == items
    assert client.get("/health").json()["text"] is True


def test_a_bare_text_model_dir_without_encoder_says_to_serve_the_run(alpharec_dir):
    client = TestClient(create_app(load_served(alpharec_dir)))
    response = post(client, "/recommend", {"text": "a bold red"}, {})
    assert response.status_code == 422 and "run directory" in response.text


# --- retrieval --------------------------------------------------------------------------
def test_faiss_retrieval_matches_exact_on_a_small_catalogue(lightgcn_dir):
    served = load_served(lightgcn_dir, retrieval="faiss", recall_users=200)
    retrieval = served.retrieval
    assert isinstance(retrieval, FaissRetrieval)
    recall = retrieval.describe()["recall_vs_exact"]
    assert recall["recall@10"] >= 0.95 and recall["users"] == 200
    client = TestClient(create_app(served))
    body = client.get("/health").json()
    assert body["retrieval"]["kind"] == "faiss" and "recall_vs_exact" in body["retrieval"]
    model = served.model
    response = post(client, "/recommend", {"user_id": str(model.user_ids[1]), "k": 10}, {})
    assert response.json()["retrieval"] == "faiss"
    items = ids_of(response)
    seen = set(model.item_ids[model.seen[1].indices].tolist())
    assert len(items) == 10 and not seen & set(items)
    exact = model.recommend(Query.users([1]), 10).item_index[0].numpy()
    assert len(set(items) & {str(model.item_ids[i]) for i in exact}) >= 9


def test_retrieval_is_chosen_by_catalogue_size_and_can_be_forced(lightgcn_dir, ease_served):
    model = load_model(lightgcn_dir)
    assert isinstance(choose_retrieval(model), ExactRetrieval)  # small catalogue
    chosen = choose_retrieval(model, "auto", faiss_min_items=10, recall_users=0)
    assert isinstance(chosen, FaissRetrieval)
    assert isinstance(choose_retrieval(model, "exact", faiss_min_items=10), ExactRetrieval)
    with pytest.raises(ModelError, match="not an inner product"):
        choose_retrieval(ease_served.model, "faiss")
    assert isinstance(choose_retrieval(ease_served.model, "auto", 10), ExactRetrieval)
    result = measure_recall(model, ExactRetrieval(model), k=10, n_users=50)
    assert result["recall@10"] == 1.0


# --- loading ------------------------------------------------------------------------------
def test_a_corrupt_or_incomplete_model_refuses_to_start_naming_the_file(lightgcn_dir, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("manifest.json", "weights.safetensors"):
        (broken / name).write_bytes((lightgcn_dir / name).read_bytes())
    (broken / "weights.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(ModelError, match=r"weights\.safetensors"):
        load_served(broken)
    result = invoke("serve", broken)
    assert result.exit_code == 2 and "weights.safetensors" in result.output.replace("\n", "")
    assert "Traceback" not in result.output

    (broken / "weights.safetensors").unlink()
    with pytest.raises(ModelError, match=r"weights\.safetensors"):
        load_served(broken)
    (broken / "manifest.json").write_text("{not json")
    with pytest.raises(ModelError, match=r"manifest\.json"):
        load_served(broken)
    with pytest.raises(SemrecError, match="neither a run directory"):
        load_served(tmp_path / "empty")


def test_serve_runs_uvicorn_on_the_compiled_loop_and_parser(lightgcn_dir, monkeypatch):
    import uvicorn

    calls = []

    def run(app, **options):
        # no progress display left refreshing while the server runs
        refreshing = [t for t in threading.enumerate() if type(t).__name__ == "_RefreshThread"]
        for thread in refreshing:
            thread.join(timeout=2)  # a stopped display's thread ends within 1/10 s
        assert not any(thread.is_alive() for thread in refreshing)
        calls.append(options)

    monkeypatch.setattr(uvicorn, "run", run)
    threads = torch.get_num_threads()  # serve sets them: leave this process's as they are
    monkeypatch.setattr(torch, "set_num_threads", lambda n: calls.append({"threads": n}))
    result = invoke("serve", lightgcn_dir, "--port", 8123, "--threads", threads + 1)
    assert result.exit_code == 0, result.output
    assert calls[0] == {"threads": threads + 1}
    assert calls[1]["loop"] == "uvloop" and calls[1]["http"] == "httptools"
    assert calls[1]["host"] == "127.0.0.1" and calls[1]["port"] == 8123
    assert "uvloop and httptools" in result.output and "warning" not in result.output

    monkeypatch.setattr("semrec.serving.app.find_spec", lambda name: None)  # neither installed
    result = invoke("serve", lightgcn_dir)
    assert calls[2] == {"threads": 1}  # the default
    assert calls[3]["loop"] == "asyncio" and calls[3]["http"] == "h11"
    assert "uvloop or httptools is missing" in result.output


def test_a_bare_model_dir_serves_without_titles(ease_run):
    served = load_served(ease_run / "model")
    client = TestClient(create_app(served))
    response = post(client, "/recommend", {"user_id": a_user(served), "k": 3}, {})
    assert [item["title"] for item in response.json()["items"]] == ["", "", ""]
    assert client.get("/health").json()["catalogue"] is False


# --- batch ---------------------------------------------------------------------------------
def test_all_users_batch_writes_parquet_atomically(ease_run, ease_served, tmp_path):
    out = tmp_path / "recs" / "recs.parquet"
    result = invoke(
        "recommend", ease_run, "--all-users", "--k", 5, "--out", out, "--batch-size", 100
    )
    assert result.exit_code == 0, result.output
    assert [p.name for p in out.parent.iterdir()] == ["recs.parquet"]  # no temp files left
    frame = pd.read_parquet(out)
    model = ease_served.model
    assert list(frame.columns) == ["user_id", "rank", "item_id", "score"]
    assert len(frame) == model.n_users * 5
    assert frame.groupby("user_id")["rank"].apply(list).map(lambda r: r == [1, 2, 3, 4, 5]).all()
    user = a_user(ease_served)
    client = TestClient(create_app(ease_served))
    assert frame[frame.user_id == user].item_id.tolist() == ids_of(
        post(client, "/recommend", {"user_id": user, "k": 5}, {})
    )
    result = invoke("recommend", ease_run, "--all-users")
    assert result.exit_code == 2 and "--out" in result.output


def test_load_run_and_served_agree_on_the_catalogue(ease_run, ease_served):
    _, dataset, data_split, _ = load_run(ease_run)
    titles = dataset.catalog.aligned_to(data_split.train.item_ids).titles(np.arange(5))
    assert ease_served.titles(np.arange(5)) == titles
