"""The HTTP API over a saved model (FastAPI): recommendations, similar items, item details.

``load_served(path)`` reads a run directory (``config.yaml`` + ``model/``: the catalogue is
re-read from the run's data set, and free text is encoded by the run's encoder) or a bare
saved model directory (``manifest.json`` + ``weights.safetensors``: no catalogue, so titles
are empty, and no text encoder). Loading reads JSON and safetensors only: it cannot execute
code. ``create_app(served, api_key=...)`` returns the FastAPI app:

    GET  /health            no key needed; model, catalogue size, retrieval (and its recall)
    GET  /items/{item_id}   the item's title and text fields
    POST /recommend         {user_id | history | text (+ user_id), k, exclude}
    POST /similar           {item_id | text, k, exclude}
    GET  /docs              OpenAPI documentation (the schema only: no data, no key needed)

With an API key every data endpoint requires ``Authorization: Bearer <key>`` (compared in
constant time; 401 otherwise). Request bodies over ``max_body_bytes`` get 413.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import to_json
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

import semrec
from semrec.config import load_config
from semrec.data import ItemCatalog
from semrec.encoders import l2_normalize
from semrec.errors import DataError, SemrecError
from semrec.experiment import (
    CONFIG_FILE,
    MODEL_DIR,
    DataLocation,
    intention_encoder,
    prepare_dataset,
)
from semrec.models import Query, Recommender, load_model
from semrec.models.base import MANIFEST, TopK
from semrec.serving.batching import RankedItems, RetrievalBatcher, TopKRequest
from semrec.serving.index import (
    FAISS_MIN_ITEMS,
    RECALL_SAMPLE_USERS,
    Retrieval,
    RetrievalChoice,
    choose_retrieval,
    has_vectors,
    top_k_excluding,
)

log = logging.getLogger(__name__)

MAX_K = 1000
MAX_BODY_BYTES = 1 << 20
MAX_LIST_ITEMS = 10_000
MAX_TEXT_CHARS = 2_000

TextToVectors = Callable[[list[str]], np.ndarray]


@dataclass(eq=False)
class ServedModel:
    """A loaded model with what serving needs around it."""

    model: Recommender
    retrieval: Retrieval
    source: Path
    #: item fields aligned to the model's item indices; None when serving a bare model dir
    catalog: ItemCatalog | None = None
    #: texts -> unit vectors from the model's training encoder; None when unavailable
    encode_text: TextToVectors | None = None
    #: why ``encode_text`` is None, for models that read text
    text_unavailable: str = ""
    _unit_items: torch.Tensor | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # dicts and a rendered title per item: a pandas lookup or render costs ~1 ms a request
        self.user_lookup = {str(u): i for i, u in enumerate(self.model.user_ids)}
        self.item_lookup = {str(item): i for i, item in enumerate(self.model.item_ids)}
        n_items = self.model.n_items
        rendered = [""] * n_items if self.catalog is None else self.catalog.titles()
        self._titles = np.asarray(rendered, dtype=object)
        self._item_ids = np.asarray([str(item) for item in self.model.item_ids], dtype=object)

    @property
    def reads_text(self) -> bool:
        return callable(getattr(self.model, "score_intention", None))

    def unit_item_vectors(self) -> torch.Tensor:
        """The model's item vectors, unit length (cosine similarity of items)."""
        if self._unit_items is None:
            with torch.no_grad():
                _, items = self.model.user_item_vectors(Query.users([0]))
                self._unit_items = F.normalize(items.float(), dim=1)
        return self._unit_items

    def titles(self, item_index: np.ndarray) -> list[str]:
        return self._titles[np.asarray(item_index, dtype=np.int64)].tolist()

    def item_id_strings(self, item_index: np.ndarray) -> list[str]:
        return self._item_ids[np.asarray(item_index, dtype=np.int64)].tolist()

    def seen_items(self, user: int) -> sp.csr_matrix:
        """[1, n_items] matrix of a known user's training items (``model.history_matrix``
        of one user, without its slicing overhead)."""
        seen = self.model.seen
        items = seen.indices[seen.indptr[user] : seen.indptr[user + 1]]
        return sp.csr_matrix(
            (np.ones(len(items), dtype=np.float32), items, np.array([0, len(items)])),
            shape=(1, self.model.n_items),
        )


def load_served(
    path: Path,
    location: DataLocation | None = None,
    retrieval: RetrievalChoice = "auto",
    faiss_min_items: int = FAISS_MIN_ITEMS,
    recall_users: int = RECALL_SAMPLE_USERS,
    text_encoder: TextToVectors | None = None,
) -> ServedModel:
    """Load a run directory or a saved model directory for serving (see the module
    docstring); a missing or corrupt file fails with a message naming it."""
    path = Path(path)
    if (path / CONFIG_FILE).is_file():
        config = load_config(path / CONFIG_FILE)
        model = load_model(path / MODEL_DIR)
        try:
            dataset = prepare_dataset(config.dataset, location or DataLocation())
        except DataError as error:
            raise DataError(
                f"{error}\n(serving {path} reads its item catalogue from the run's data set; "
                f"pass --data-dir, or serve {path / MODEL_DIR} to go without titles)"
            ) from None
        catalog = None if dataset.catalog is None else dataset.catalog.aligned_to(model.item_ids)
        encode, unavailable = text_encoder, ""
        if encode is None and callable(getattr(model, "score_intention", None)):
            try:
                encoder = intention_encoder(config)
                encode = lambda texts: l2_normalize(encoder.encode(texts))  # noqa: E731
            except SemrecError as error:
                unavailable = str(error)
    elif (path / MANIFEST).is_file():
        model, catalog, encode = load_model(path), None, text_encoder
        unavailable = (
            f"{path} is a bare model directory, which does not name its text encoder: serve "
            "its run directory to answer text"
        )
    else:
        raise SemrecError(
            f"{path}: neither a run directory ({CONFIG_FILE} + {MODEL_DIR}/) nor a saved model "
            f"({MANIFEST} + weights.safetensors)"
        )
    if model.n_users == 0 or model.n_items == 0:
        raise SemrecError(f"{path}: the model knows no users or no items")
    chosen = choose_retrieval(model, retrieval, faiss_min_items, recall_users)
    if has_vectors(model):
        model.user_item_vectors(Query.users([0]))  # propagate once, before the first request
    return ServedModel(model, chosen, path, catalog, encode, unavailable)


def http_stack() -> dict[str, str]:
    """uvicorn's event loop and HTTP parser: the compiled ones (uvloop, httptools) where
    installed, as uvicorn itself prefers, else asyncio's loop and the pure-Python h11."""
    return {
        "loop": "uvloop" if find_spec("uvloop") else "asyncio",
        "http": "httptools" if find_spec("httptools") else "h11",
    }


# --- request and response bodies --------------------------------------------------------
Id = str | int
K = Annotated[int, Field(ge=1, le=MAX_K, description="how many items (capped at the catalogue)")]
ItemIds = Annotated[list[Id], Field(max_length=MAX_LIST_ITEMS)]
Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]


class RecommendRequest(BaseModel):
    """One of ``user_id`` (a known user), ``history`` (item ids, any user) or ``text`` (an
    intention in words, for models that read text; may be mixed with ``user_id``)."""

    model_config = ConfigDict(extra="forbid")
    user_id: Id | None = None
    history: ItemIds | None = None
    text: Text | None = None
    k: K = 10
    exclude: ItemIds = Field(default_factory=list, description="item ids never to return")

    @model_validator(mode="after")
    def _one_question(self) -> RecommendRequest:
        if self.history is not None and (self.user_id is not None or self.text is not None):
            raise ValueError("history cannot be combined with user_id or text")
        if self.user_id is None and self.history is None and self.text is None:
            raise ValueError("give one of user_id, history or text")
        return self


class SimilarRequest(BaseModel):
    """Items like ``item_id``, or matching ``text`` (models that read text)."""

    model_config = ConfigDict(extra="forbid")
    item_id: Id | None = None
    text: Text | None = None
    k: K = 10
    exclude: ItemIds = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_question(self) -> SimilarRequest:
        if (self.item_id is None) == (self.text is None):
            raise ValueError("give exactly one of item_id or text")
        return self


class ScoredItem(BaseModel):
    item_id: str
    score: float
    title: str


class ItemList(BaseModel):
    model: str
    retrieval: str
    items: list[ScoredItem]


class ItemDetails(BaseModel):
    item_id: str
    title: str
    fields: dict[str, str]


def _field_error(name: str, message: str) -> HTTPException:
    """422 in FastAPI's validation format, naming the body field."""
    return HTTPException(
        422, detail=[{"loc": ["body", name], "msg": message, "type": "value_error"}]
    )


# --- the app --------------------------------------------------------------------------
#: reads ``Authorization: Bearer <key>`` (module level: FastAPI resolves annotations here)
BEARER = HTTPBearer(auto_error=False, description="the server's --api-key")


Body = TypeVar("Body", bound=BaseModel)


def _body_too_large(max_bytes: int) -> HTTPException:
    return HTTPException(413, detail=f"request body larger than {max_bytes} bytes")


async def read_json(request: Request, schema: type[Body], max_bytes: int) -> Body:
    """The request body validated as ``schema``: 413 past ``max_bytes`` (declared or
    streamed), 422 in FastAPI's format (``loc`` starting with "body") when it is not valid
    JSON or does not fit the schema. One pydantic-core call parses and validates: FastAPI's
    own body handling (json.loads, then validation) cost about a tenth of a served request."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
        raise _body_too_large(max_bytes)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise _body_too_large(max_bytes)
    try:
        return schema.model_validate_json(body)
    except ValidationError as error:
        errors = [
            # an unparsable body is not echoed back (FastAPI says {} there too)
            {**e, "loc": ("body", *e["loc"])}
            | ({"input": {}} if e["type"] == "json_invalid" else {})
            for e in error.errors(include_url=False)
        ]
        raise RequestValidationError(errors) from None


def documented_body(schema: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a JSON body read by :func:`read_json` (FastAPI documents only the bodies
    it parses itself)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema.model_json_schema()}},
        }
    }


def create_app(
    served: ServedModel, api_key: str | None = None, max_body_bytes: int = MAX_BODY_BYTES
) -> FastAPI:
    """The FastAPI app serving ``served``; with ``api_key`` every endpoint but /health (and
    the schema at /docs, /openapi.json) needs ``Authorization: Bearer <api_key>``."""
    model = served.model
    app = FastAPI(
        title=f"semrec: {model.name}",
        version=semrec.__version__,
        description=f"Recommendations from the {model.name} model saved at {served.source}.",
    )
    expected = b"" if api_key is None else api_key.encode()

    async def require_key(  # async: a sync dependency costs a thread hop per request
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> None:
        given = b"" if credentials is None else credentials.credentials.encode()
        if not hmac.compare_digest(given, expected):
            raise HTTPException(
                401,
                detail="missing or wrong API key: send 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    # without a key, no dependency at all (nothing to check, nothing to solve per request)
    api = APIRouter(dependencies=[] if api_key is None else [Depends(require_key)])

    def user_index(user_id: Id) -> int:
        index = served.user_lookup.get(str(user_id))
        if index is None:
            raise HTTPException(404, detail=f"unknown user id {str(user_id)!r}")
        return index

    def item_indices(item_ids: list[Id], name: str) -> np.ndarray:
        codes = [served.item_lookup.get(str(i), -1) for i in item_ids]
        if -1 in codes:
            unknown = [str(i) for i, c in zip(item_ids, codes, strict=True) if c < 0][:5]
            raise _field_error(name, f"unknown item id(s) {unknown}")
        return np.asarray(codes, dtype=np.int64)

    def exclusion(base: sp.csr_matrix | None, extra: np.ndarray) -> sp.csr_matrix | None:
        if not len(extra):
            return base
        extra_row = sp.csr_matrix(
            (np.ones(len(extra), dtype=np.float32), (np.zeros(len(extra), dtype=int), extra)),
            shape=(1, model.n_items),
        )
        return extra_row if base is None else (base + extra_row).tocsr()

    def item_list(top: TopK, retrieval: str) -> Response:
        scores = top.scores[0].cpu().numpy()
        keep = np.isfinite(scores)
        return ranked_list(
            RankedItems(top.item_index[0].cpu().numpy()[keep], scores[keep]), retrieval
        )

    def ranked_list(ranked: RankedItems, retrieval: str) -> Response:
        items, scores = ranked.item_index, ranked.scores
        titles = served.titles(items)
        ids = served.item_id_strings(items)
        # plain dicts to JSON in one pydantic-core call: validating through ItemList (the
        # schema at /docs) took longer than scoring the items, and for 10 items json.dumps
        # (Starlette's JSONResponse) takes 24 us against 7 us
        return Response(
            to_json(
                {
                    "model": model.name,
                    "retrieval": retrieval,
                    "items": [
                        {"item_id": i, "score": s, "title": t}
                        for i, s, t in zip(ids, scores.tolist(), titles, strict=True)
                    ],
                }
            ),
            media_type="application/json",
        )

    def text_vector(text: str) -> np.ndarray:
        if not served.reads_text:
            raise _field_error(
                "text", f"{model.name} does not read text; `text` needs a model such as alpharec"
            )
        if served.encode_text is None:
            raise _field_error("text", served.text_unavailable or "no text encoder available")
        return served.encode_text([text])

    batcher = RetrievalBatcher(served.retrieval)

    @app.get("/health", tags=["service"])
    async def health() -> dict[str, Any]:
        """Liveness and what is served; never needs the API key."""
        return {
            "status": "ok",
            "model": model.name,
            "n_users": model.n_users,
            "n_items": model.n_items,
            "catalogue": served.catalog is not None,
            "text": served.reads_text and served.encode_text is not None,
            "retrieval": served.retrieval.describe(),
            "batching": batcher.stats(),
            "semrec_version": semrec.__version__,
        }

    @api.get("/items/{item_id}", tags=["items"])
    async def item(item_id: str) -> ItemDetails:
        """An item's title and text fields (empty without a catalogue)."""
        index = served.item_lookup.get(item_id)
        if index is None:
            raise HTTPException(404, detail=f"unknown item id {item_id!r}")
        fields = {} if served.catalog is None else served.catalog.fields.iloc[index].to_dict()
        return ItemDetails(
            item_id=item_id, title=served.titles(np.array([index]))[0], fields=fields
        )

    def answer_text(request: RecommendRequest, extra: np.ndarray, k: int) -> Response:
        vector = text_vector(request.text)
        if request.user_id is None:
            scores, seen = model.score_intention(vector), None
        else:
            users = np.array([user_index(request.user_id)])
            scores = model.score_intention(vector, users)
            seen = served.seen_items(int(users[0]))
        return item_list(top_k_excluding(scores, k, exclusion(seen, extra)), "exact")

    def ranking_endpoint(path: str, body: type[BaseModel]) -> Callable:
        """POST ``path``, answering an ItemList; the handler reads its body with read_json."""
        return api.post(
            path, tags=["recommend"], response_model=ItemList, openapi_extra=documented_body(body)
        )

    @ranking_endpoint("/recommend", RecommendRequest)
    async def recommend(http_request: Request) -> Response:
        """Top-k items for a known user, a history of item ids, or a text intention.
        Seen items (the user's training items, or the history) and ``exclude`` are left out.
        Concurrent user and history requests are scored together in batches.
        """
        request = await read_json(http_request, RecommendRequest, max_body_bytes)
        extra = item_indices(request.exclude, "exclude")
        k = min(request.k, model.n_items)
        if request.text is not None:  # encoding text takes a while: off the event loop
            return await run_in_threadpool(answer_text, request, extra, k)
        if request.history is not None:
            if not model.accepts_history:
                raise _field_error(
                    "history",
                    f"{model.name} recommends for known users only; `history` needs a model "
                    "that reads item histories (e.g. ease, item_knn)",
                )
            history = item_indices(request.history, "history")
            ranked = await batcher.top_k(TopKRequest(k, extra, history=history))
            return ranked_list(ranked, "exact")
        user = user_index(request.user_id)
        ranked = await batcher.top_k(TopKRequest(k, extra, user=user))
        return ranked_list(ranked, served.retrieval.kind)

    @ranking_endpoint("/similar", SimilarRequest)
    async def similar(http_request: Request) -> Response:
        """Items like one item (cosine of the model's item vectors; for history-reading
        models, the scores of a history made of that item alone), or like a text."""
        request = await read_json(http_request, SimilarRequest, max_body_bytes)
        return await run_in_threadpool(answer_similar, request)

    def answer_similar(request: SimilarRequest) -> Response:
        extra = item_indices(request.exclude, "exclude")
        k = min(request.k, model.n_items)
        if request.text is not None:
            vector = text_vector(request.text)  # 422 first for models that do not read text
            scores = model.score_intention(vector)
            return item_list(top_k_excluding(scores, k, exclusion(None, extra)), "exact")
        index = served.item_lookup.get(str(request.item_id))
        if index is None:
            raise HTTPException(404, detail=f"unknown item id {str(request.item_id)!r}")
        with torch.no_grad():
            if has_vectors(model):
                unit = served.unit_item_vectors()
                scores = (unit[index : index + 1] @ unit.T).float()
            elif model.accepts_history and model.scores_all_items:
                scores = model.score(Query.histories([[index]]))
            else:
                raise _field_error(
                    "item_id",
                    f"{model.name} has neither item vectors nor history scoring, so it cannot "
                    "say which items are similar",
                )
        itself_and_excluded = exclusion(None, np.append(extra, index))
        return item_list(top_k_excluding(scores, k, itself_and_excluded), "exact")

    app.include_router(api)
    return app
