"""The ``semrec`` command line (Typer + Rich). The only place that reads argv and environment."""

from __future__ import annotations

import functools
import gc
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from semrec.errors import SemrecError
from semrec.progress import Advance, reporting_to

app = typer.Typer(
    name="semrec",
    help="Recommender systems that learn from behaviour and item meaning together.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Inspect data sets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
console = Console()
errors = Console(stderr=True)

DataDir = Annotated[
    Path | None,
    typer.Option(help="Folder holding the named data sets (else $SEMREC_DATA, ../shared/data)."),
]


class RichReporter:
    """Shows library progress as Rich bars."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Advance]:
        task_id = self.progress.add_task(description, total=total, info="")

        def advance(steps: int = 1, **fields: Any) -> None:
            info = " ".join(f"{key} {value:.4g}" for key, value in fields.items())
            self.progress.update(task_id, advance=steps, info=info)

        try:
            yield advance
        finally:
            self.progress.remove_task(task_id)


@contextmanager
def rich_progress() -> Iterator[None]:
    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        console=errors,
        transient=True,
    )
    with bars, reporting_to(RichReporter(bars)):
        _shown_bars.append(bars)
        try:
            yield
        finally:
            _shown_bars.remove(bars)


#: the progress displays now on screen (a command runs inside one)
_shown_bars: list[Progress] = []


def stop_progress_display() -> None:
    """End the progress display of a command that will run on without bars (a server):
    its refresh thread would otherwise wake ten times a second for as long as it runs."""
    for bars in _shown_bars:
        bars.stop()


def friendly_errors(command: Callable) -> Callable:
    """Turn user-fixable errors into one red line and exit status 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with rich_progress():
                return command(*args, **kwargs)
        except SemrecError as error:
            errors.print(f"[bold red]error:[/] {error}", highlight=False, markup=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            errors.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None

    return wrapper


def _location(data_dir: Path | None):
    from semrec.experiment import DataLocation

    return DataLocation(data_dir=data_dir, env_data_dir=os.environ.get("SEMREC_DATA"))


SHORT_NAMES = {
    "recall": "R",
    "ndcg": "N",
    "precision": "P",
    "hit_rate": "HR",
    "mrr": "MRR",
    "map": "MAP",
    "coverage": "Cov",
    "jain_corrected": "Jain'",
    "gini_corrected": "Gini'",
    "ent_corrected": "Ent'",
    "tail_share": "Tail",
    "jain": "Jain",
    "gini": "Gini",
    "arp": "ARP",
}


def _short(column: str) -> str:
    metric, at, k = column.partition("@")
    return f"{SHORT_NAMES.get(metric, metric)}@{k}" if at else column


def _metrics_table(title: str, rows: dict[str, dict[str, Any]], columns: list[str]) -> Table:
    table = Table(title=title, caption="R recall, N NDCG, HR hit rate, Cov catalogue coverage")
    table.add_column("model", no_wrap=True)
    for column in columns:
        table.add_column(_short(column), justify="right", no_wrap=True)
    for model, values in rows.items():
        cells = [values.get(c, "") for c in columns]
        table.add_row(model, *[f"{v:.4f}" if isinstance(v, float) else str(v) for v in cells])
    return table


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress.")] = False):
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")


@app.command()
@friendly_errors
def demo(
    out: Annotated[Path, typer.Option(help="Where to write report.md and metrics.json.")] = Path(
        "runs/demo"
    ),
    mf_epochs: Annotated[int | None, typer.Option(help="Override MF-BPR epochs.")] = None,
    max_users: Annotated[
        int | None, typer.Option(help="Use only the first N users (a quick smoke run).")
    ] = None,
) -> None:
    """Train MostPop, ItemKNN, EASE and MF-BPR on the bundled X-Wines data and compare them."""
    from semrec.demo import CITATION, run_demo

    console.print("[bold]semrec demo[/]: X-Wines Slim (bundled, CC0), ratings >= 4 as positives")
    result = run_demo(out, mf_epochs=mf_epochs, max_users=max_users)
    console.print(
        _metrics_table("Full ranking, random 80/20 per user", result.rows, result.columns)
    )
    fairness = Table(
        title="Item fairness and popularity bias @20",
        caption="' corrected form (Rampisela et al. 2024); Jain higher and Gini lower fairer; "
        "Tail share of long-tail slots; ARP average recommended popularity",
    )
    fairness.add_column("model", no_wrap=True)
    for column in result.fairness_columns:
        fairness.add_column(_short(column), justify="right", no_wrap=True)
    for name, values in result.rows.items():
        cells = [values.get(c, float("nan")) for c in result.fairness_columns]
        fairness.add_row(name, *[f"{v:.4f}" if isinstance(v, float) else str(v) for v in cells])
    console.print(fairness)
    for sample in result.samples:
        console.print(f"\n[bold]user {sample.user_id}[/] liked: " + "; ".join(sample.history))
        for name, titles in sample.recommendations.items():
            console.print(f"  [cyan]{name:>8}[/] top-5: " + "; ".join(titles), highlight=False)
    console.print(f"report: {result.report_path}")
    console.print(f"[dim]{CITATION}[/]")


@app.command()
@friendly_errors
def train(
    config: Annotated[Path, typer.Option("--config", "-c", help="Experiment YAML file.")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config field: model.params.epochs=5."),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Run an experiment config: fit, evaluate, write runs/<name>/."""
    from semrec.config import load_config
    from semrec.evaluation.report import metric_columns
    from semrec.experiment import METRICS_FILE, run_experiment

    experiment = load_config(config, set_ or [])
    run_dir = run_experiment(experiment, _location(data_dir))
    record = json.loads((run_dir / METRICS_FILE).read_text())
    columns = metric_columns(experiment.evaluation.ks, ("recall", "ndcg", "hit_rate", "coverage"))
    rows = {record["model"]: {**record["metrics"], "fit s": f"{record['fit_seconds']:.1f}"}}
    console.print(_metrics_table(f"run {experiment.name}", rows, [*columns, "fit s"]))
    console.print(f"run directory: {run_dir}")


@app.command()
@friendly_errors
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `semrec train`.")],
    k: Annotated[list[int] | None, typer.Option("--k", help="Cutoffs (repeatable).")] = None,
    part: Annotated[str, typer.Option(help="test or valid")] = "test",
    data_dir: DataDir = None,
) -> None:
    """Re-evaluate a saved run's model on its split."""
    from semrec.evaluation.report import metric_columns
    from semrec.experiment import evaluate_as_configured, load_run

    if part not in ("test", "valid"):
        raise SemrecError(f"--part must be test or valid, got {part!r}")
    config, _, data_split, model = load_run(run_dir, _location(data_dir))
    ks = sorted(set(k)) if k else config.evaluation.ks
    result = evaluate_as_configured(model, data_split, config.evaluation, ks=ks, part=part)
    columns = metric_columns(ks, ("recall", "ndcg", "precision", "hit_rate", "mrr", "map"))
    console.print(_metrics_table(f"{config.name} ({part})", {model.name: result.metrics}, columns))
    console.print(f"protocol: {result.protocol}")


@app.command()
@friendly_errors
def compare(
    run_dirs: Annotated[
        list[Path], typer.Argument(help="Two or more run directories of the same split.")
    ],
    out: Annotated[Path, typer.Option(help="Where to write the comparison report (HTML).")] = Path(
        "compare-report.html"
    ),
    alpha: Annotated[float, typer.Option(min=0.0, max=1.0, help="Significance level.")] = 0.05,
) -> None:
    """Compare runs of one split: a table with paired significance marks (t-test and
    Wilcoxon against the first run, Holm-corrected), and the same as a self-contained HTML."""
    from semrec.evaluation.compare import (
        compare as compare_runs,
    )
    from semrec.evaluation.compare import (
        load_comparable_runs,
        notes,
        write_comparison_html,
    )

    comparison = compare_runs(load_comparable_runs(run_dirs), alpha=alpha)
    table = Table(title="comparison (first run = baseline)")
    table.add_column("run", no_wrap=True)
    for column in comparison.terminal_columns:
        table.add_column(_short(column), justify="right", no_wrap=True)
    for label, values in comparison.rows.items():
        cells = []
        for column in comparison.terminal_columns:
            value = values.get(column, "")
            text = f"{value:.4f}" if isinstance(value, float) else str(value)
            cells.append(text + comparison.marks.get((label, column), ""))
        table.add_row(label, *cells)
    console.print(table)
    console.print(
        "[dim]Jain' / Gini' corrected individual item fairness (higher / lower fairer), "
        "Tail share of slots on long-tail items; all columns and K in the HTML report[/]"
    )
    for note in notes(comparison):
        console.print(f"[dim]{note}[/]", highlight=False)
    path = write_comparison_html(comparison, out)
    console.print(f"report: {path}", highlight=False, soft_wrap=True)


@app.command()
@friendly_errors
def recommend(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `semrec train`.")],
    user: Annotated[list[str] | None, typer.Option(help="User id (repeatable).")] = None,
    history: Annotated[
        str | None, typer.Option(help="Comma-separated item ids, for a user the model never saw.")
    ] = None,
    intention: Annotated[
        str | None,
        typer.Option(
            help="What the user wants, in words (models that read text, e.g. alpharec); "
            "mixed with each --user, or on its own."
        ),
    ] = None,
    k: Annotated[int, typer.Option(min=1, max=1000)] = 10,
    data_dir: DataDir = None,
    all_users: Annotated[
        bool, typer.Option("--all-users", help="Top-k of every known user into --out (Parquet).")
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="--all-users: the Parquet file to write (atomically).")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="--all-users: users per chunk.")] = 1024,
    retrieval: Annotated[
        str, typer.Option(help="--all-users: auto, exact or faiss (see `semrec serve`).")
    ] = "auto",
) -> None:
    """Top-k items, with titles, for known users, a history of items, or a text intention;
    or, with --all-users, every user's top-k written to a Parquet file."""
    from semrec.experiment import encode_texts_like_training, load_run
    from semrec.models import Query
    from semrec.models.base import exclude_cells_, top_k

    if all_users:
        _recommend_all_users(run_dir, k, out, batch_size, retrieval)
        return
    if not user and not history and not intention:
        raise SemrecError("give --user ID (repeatable), --history ITEM,ITEM,... or --intention")
    config, dataset, data_split, model = load_run(run_dir, _location(data_dir))
    train = data_split.train
    if intention is not None:
        if not hasattr(model, "score_intention"):
            raise SemrecError(
                f"{model.name} does not read text; --intention needs a model such as alpharec"
            )
        vector = encode_texts_like_training(config, [intention])
        labels = user or [None]
        tops = []
        for label in labels:
            if label is None:
                tops.append((f"intention {intention!r}", top_k(model.score_intention(vector), k)))
                continue
            users = train.user_index_of([label])
            scores = exclude_cells_(model.score_intention(vector, users), train.user_items[users])
            tops.append((f"{label} + intention {intention!r}", top_k(scores, k)))
    elif history:
        query = Query.histories([train.item_index_of(history.split(","))])
        tops = [("history", model.recommend(query, k))]
    else:
        tops = [(u, model.recommend(Query.users(train.user_index_of([u])), k)) for u in user]
    for label, top in tops:
        items = top.item_index[0].cpu().numpy()
        scores = top.scores[0].cpu().numpy()
        table = Table(title=f"top-{k} for {label} ({model.name})")
        table.add_column("rank", justify="right")
        table.add_column("item_id")
        table.add_column("title")
        table.add_column("score", justify="right")
        titles = dataset.catalog.titles(items) if dataset.catalog is not None else [""] * len(items)
        for rank, (item, title, score) in enumerate(zip(items, titles, scores, strict=True), 1):
            if np.isfinite(score):
                table.add_row(str(rank), str(train.item_ids[item]), title, f"{score:.4f}")
        console.print(table)


def _recommend_all_users(
    run_dir: Path, k: int, out: Path | None, batch_size: int, retrieval: str
) -> None:
    from semrec.models import load_model
    from semrec.serving import choose_retrieval, write_all_user_recommendations
    from semrec.serving.batch import model_dir_of

    if out is None:
        raise SemrecError("--all-users needs --out FILE.parquet")
    model = load_model(model_dir_of(run_dir))
    chosen = choose_retrieval(model, retrieval)
    started = time.perf_counter()
    rows = write_all_user_recommendations(model, chosen, out, k, batch_size)
    seconds = time.perf_counter() - started
    console.print(
        f"{model.n_users:,} users x top-{k} ({chosen.kind} retrieval) -> {rows:,} rows in "
        f"{seconds:.1f} s: {out}"
    )


@app.command()
@friendly_errors
def serve(
    run_dir: Annotated[
        Path, typer.Argument(help="A run directory (titles, text) or a saved model directory.")
    ],
    host: Annotated[
        str | None,
        typer.Option(help="Interface to bind (default 127.0.0.1; 0.0.0.0 exposes the server)."),
    ] = None,
    port: Annotated[int, typer.Option(min=0, max=65535)] = 8000,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="SEMREC_API_KEY",
            help="Require 'Authorization: Bearer KEY' on every endpoint but /health.",
        ),
    ] = None,
    retrieval: Annotated[
        str,
        typer.Option(help="auto (FAISS for large catalogues of vector models), exact or faiss."),
    ] = "auto",
    faiss_min_items: Annotated[
        int, typer.Option(min=1, help="auto: catalogues at least this large use FAISS.")
    ] = 100_000,
    max_body_bytes: Annotated[int, typer.Option(min=1, help="Larger request bodies get 413.")] = (
        1 << 20
    ),
    threads: Annotated[
        int,
        typer.Option(
            min=1,
            help="Threads torch and FAISS use to score one batch of requests. 1 gives the "
            "lowest latency for the small batches of online requests.",
        ),
    ] = 1,
    data_dir: DataDir = None,
) -> None:
    """Serve a saved model over HTTP (FastAPI): /recommend, /similar, /items, /health, /docs."""
    try:
        import torch
        import uvicorn

        from semrec.serving.app import create_app, http_stack, load_served
    except ImportError as error:
        raise SemrecError(f"serving needs {error.name}: pip install 'semrec[serve]'") from None

    if retrieval not in ("auto", "exact", "faiss"):
        raise SemrecError(f"--retrieval must be auto, exact or faiss, got {retrieval!r}")
    if host is None:
        host = "127.0.0.1"
    elif api_key is None and host not in ("127.0.0.1", "localhost", "::1"):
        errors.print(
            f"[yellow]warning:[/] serving on {host} without --api-key: anyone who "
            "can reach it can query the model"
        )
    served = load_served(
        run_dir, _location(data_dir), retrieval=retrieval, faiss_min_items=faiss_min_items
    )
    # after loading (which may build an index on every core): one request scores a few rows,
    # where more threads spin and take cores from the event loop more than they help
    torch.set_num_threads(threads)
    if served.retrieval.kind == "faiss":
        import faiss

        faiss.omp_set_num_threads(threads)
    describe = served.retrieval.describe()
    recall = describe.get("recall_vs_exact", {}).get("recall@10")
    stack = http_stack()
    console.print(
        f"serving {served.model.name} ({served.model.n_items:,} items, "
        f"{served.model.n_users:,} users, {describe['kind']} retrieval"
        + ("" if recall is None else f", recall@10 vs exact {recall}")
        + f") on http://{host}:{port} (docs: /docs; uvicorn with {stack['loop']} and "
        f"{stack['http']})",
        highlight=False,
    )
    if stack != {"loop": "uvloop", "http": "httptools"}:
        errors.print(
            "[yellow]warning:[/] uvloop or httptools is missing (pip install 'semrec[serve]'): "
            "the pure-Python event loop and HTTP parser cost more CPU per request"
        )
    app_ = create_app(served, api_key=api_key, max_body_bytes=max_body_bytes)
    # the loaded model, catalogue and libraries are ~250k objects that live as long as the
    # server: frozen, the cyclic garbage collector stops re-scanning them in its full
    # collections, which otherwise pause every request in flight
    gc.collect()
    gc.freeze()
    stop_progress_display()
    uvicorn.run(app_, host=host, port=port, log_level="warning", **stack)


@app.command()
@friendly_errors
def encode(
    dataset: Annotated[str, typer.Argument(help="A registered data set name or a path.")],
    model: Annotated[
        str | None,
        typer.Option(help="sentence-transformers model name or folder (default all-MiniLM-L6-v2)."),
    ] = None,
    data_dir: DataDir = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            help="Cache folder, vectors in its embeddings/ (else $SEMREC_CACHE, ~/.cache/semrec)."
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per model call.")] = 64,
    template: Annotated[
        str | None,
        typer.Option(help="Item text template over the catalogue fields, e.g. '{title}'."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Encode only the first N items (a quick smoke run).")
    ] = None,
) -> None:
    """Encode a data set's item texts into vectors, cached on disk: a second run reads them."""
    from semrec.data.registry import load_dataset
    from semrec.encoders import DEFAULT_MODEL, SentenceEncoder, default_cache_dir, encode_catalog

    location = _location(data_dir)
    data = load_dataset(dataset, data_dir=location.data_dir, env_data_dir=location.env_data_dir)
    catalog = data.catalog
    if catalog is None:
        raise SemrecError(f"data set {data.name} has no item catalogue to encode")
    if template is None and catalog.text_template is None:
        raise SemrecError(
            f"data set {data.name} has no item text template; pass --template over its "
            f"fields {list(catalog.fields.columns)}"
        )
    if limit is not None:
        catalog = catalog.aligned_to(catalog.item_ids[:limit])
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # Rich shows our own bar
    encoder = SentenceEncoder(model or DEFAULT_MODEL)
    started = time.perf_counter()
    result = encode_catalog(
        catalog,
        encoder,
        cache_dir=cache_dir or default_cache_dir(os.environ.get("SEMREC_CACHE")),
        template=template,
        batch_size=batch_size,
    )
    seconds = time.perf_counter() - started
    items, dimensions = result.embeddings.shape
    console.print(f"{data.name}: {items:,} items -> {dimensions}-dim vectors, {encoder.identity}")
    if result.from_cache:
        console.print(f"cache hit: read in {seconds:.2f} s, nothing encoded")
    else:
        load_seconds = encoder.load_seconds or 0.0
        encode_seconds = max(result.encode_seconds - load_seconds, 1e-9)
        console.print(
            f"cache miss: encoded in {encode_seconds:.1f} s, {items / encode_seconds:,.1f} items/s "
            f"(batch size {batch_size}; model load {load_seconds:.1f} s not counted)"
        )
    console.print(f"cache file: {result.cache_path}", highlight=False, soft_wrap=True)


@data_app.command("info")
@friendly_errors
def data_info(
    name: Annotated[str, typer.Argument(help="A registered data set name or a path.")],
    format: Annotated[str | None, typer.Option(help="File format when NAME is a path.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Statistics of a data set: users, items, interactions, density, text coverage."""
    from semrec.data.registry import load_dataset

    location = _location(data_dir)
    dataset = load_dataset(
        name, data_dir=location.data_dir, env_data_dir=location.env_data_dir, format=format
    )
    table = Table(title=f"data set {dataset.name}", show_header=False)
    for key, value in dataset.summary().items():
        table.add_row(
            key,
            f"{value:,}"
            if isinstance(value, int) and not isinstance(value, bool)
            else f"{value:.6g}"
            if isinstance(value, float)
            else str(value),
        )
    console.print(table)


@data_app.command("list")
@friendly_errors
def data_list(data_dir: DataDir = None) -> None:
    """Registered data sets and whether their files are present."""
    from semrec.data.registry import REGISTRY, available_datasets

    location = _location(data_dir)
    present = set(
        available_datasets(data_dir=location.data_dir, env_data_dir=location.env_data_dir)
    )
    table = Table(title="registered data sets")
    table.add_column("name")
    table.add_column("present")
    table.add_column("description")
    for name, spec in REGISTRY.items():
        table.add_row(name, "yes" if name in present else "no", spec.description)
    console.print(table)
