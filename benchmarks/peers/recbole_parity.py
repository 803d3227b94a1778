"""RecBole 1.2.1 side of the ML-100K metric-parity check (Pop, ItemKNN, EASE; Recall@20, NDCG@20).

Run with the RecBole venv's python (benchmarks/peers/setup_recbole.sh builds it), never semrec's:

    /work/peers/recbole-venv/bin/python benchmarks/peers/recbole_parity.py \
        --split-dir /tmp/semrec-parity/ml-100k --out /tmp/semrec-parity/ml-100k/recbole.json \
        --item-knn-neighbors 100 --item-knn-shrink 0 --ease-regularization 250

--split-dir holds train.tsv and test.tsv, each with the header line `user_id<TAB>item_id` and
external ids as strings. Every test user has training items and a test item never occurs in that
user's train rows. The files are copied into RecBole atomic benchmark files
(<name>.train/.valid/.test.inter) in a temporary directory, which is also the working directory
while RecBole runs, because RecBole writes ./log_tensorboard and its checkpoint dir relative to it.

What RecBole 1.2.1 does, checked against its installed source (see the notes at each place):

* Vocabulary: with `benchmark_filename`, Dataset._load_inter_feat concatenates train+valid+test
  and _remap_ID_all factorizes tokens over that concatenation (internal id = order of first
  appearance, 0 = [PAD]). So items that occur only in test.tsv get an id and stay rankable (their
  scores are 0 for all three models). _data_filtering is skipped entirely for benchmark files, so
  no user/item/value filter runs (we still set the intervals to [0,inf) to make that explicit).
  The script checks that RecBole's vocabularies equal the id sets of the files and that its
  train/test parts have the files' row counts, and fails otherwise (this also catches ids that
  pandas.read_csv, which RecBole uses with default na_values, would read as NaN, e.g. "NA").
* Masking (Trainer._full_sort_batch_eval + FullSortEvalDataLoader): the [PAD] column gets -inf,
  and so does the user's "history", which is sampler.used_ids[test] minus the user's test items,
  where used_ids[test] = the user's train | valid | test items. With valid == test the history is
  exactly the user's train items, i.e. the same masking as "train items masked".
* Users averaged over: users with at least one test row (FullSortEvalDataLoader.uid_list).
* Recall@K (evaluator/metrics.py Recall.metric_info): hits in the top K / |R(u)|, with |R(u)| the
  number of distinct test items of the user (not min(|R(u)|, K)), averaged over users.
* NDCG@K (NDCG.metric_info): binary gains, DCG = sum over hit ranks i of 1/log2(i+1); IDCG =
  sum_{i=1..min(|R(u)|, K)} 1/log2(i+1); averaged over users.
* Top-K: torch.topk over the score matrix; ties (frequent for Pop, and for the 0 scores of the
  other models) are broken by torch's implementation, not by a documented rule.
* Models: Pop counts training items during its single epoch (negative sampling must be off, or
  sampled negatives would be counted too: train_neg_sample_args None), but counts a repeated item
  once per batch (see MODELS below), so MostPop runs with train_batch_size 1 and the script checks
  that the learned counts equal the training counts; ItemKNN is cosine
  with denominator |x_i||x_j| + shrink + 1e-6, the self-similarity zeroed, and for each target
  item i the k most similar items j kept (score(u,i) = sum_{j in N_k(i)} X_uj sim(j,i)), in
  float32; EASE is B = P / -diag(P), P = (X'X + reg I)^-1, diag zeroed, in float32. Duplicate
  rows in train would count twice in X (inter_matrix sums duplicates); the split files are
  expected to be de-duplicated.

torch >= 2.6 defaults torch.load to weights_only=True, which breaks RecBole's reload of its own
checkpoint at the end of training; we never write or load a checkpoint (fit(saved=False),
evaluate(load_best_model=False)). These models are fully determined by the training matrix
(no iterative training, no early stopping), so the "best" model is the fitted one.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import recbole
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.utils import get_model, get_trainer, init_seed

DATASET_NAME = "semrec_parity"  # must not be "ml-100k": RecBole then swaps in its bundled copy
TOPK = 20
# label -> (RecBole model, config overrides)
# Pop.calculate_loss does `item_cnt[item, :] = item_cnt[item, :] + 1` on a whole batch; with
# advanced indexing a repeated item in one batch is incremented once, so with RecBole's default
# train_batch_size (2048) an item's "popularity" is the number of training batches that contain
# it (capped at ceil(n_train / 2048)), which depends on batch size and shuffle order (known
# upstream: RUCAIBox/RecBole issues #1844 and #2198, fix PR #2199 unmerged in 1.2.1). With
# train_batch_size 1 the count is the item's number of training rows, i.e. real MostPop.
# The default-batch variant is reported under "models_extra" for reference.
MODELS = {
    "MostPop": ("Pop", {"train_batch_size": 1}),
    "ItemKNN": ("ItemKNN", {}),
    "EASE": ("EASE", {}),
}
EXTRA_MODELS = {
    "MostPop_recbole_default_batch2048": ("Pop", {"train_batch_size": 2048}),
}


def read_split(path: Path) -> list[tuple[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = next(reader)
        if header[:2] != ["user_id", "item_id"]:
            raise SystemExit(f"{path}: expected header user_id<TAB>item_id, got {header}")
        return [(row[0], row[1]) for row in reader if row]


def write_atomic(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("user_id:token\titem_id:token\n")
        for user, item in rows:
            handle.write(f"{user}\t{item}\n")


# RecBole data settings for the split files, shared by every peer script that reads them.
BENCHMARK_FILES_CONFIG = {
    # RecBole needs three benchmark files. The scripts pass the test file as "valid" and
    # never evaluate on it (fit(valid_data=None)), so it selects nothing; it also leaves the
    # test masking unchanged: history = (train | valid | test) - test = train.
    "benchmark_filename": ["train", "valid", "test"],
    "load_col": {"inter": ["user_id", "item_id"]},
    "USER_ID_FIELD": "user_id",
    "ITEM_ID_FIELD": "item_id",
    "RATING_FIELD": None,
    "TIME_FIELD": None,
    # No filtering of any kind (RecBole skips _data_filtering for benchmark files anyway).
    "rm_dup_inter": None,
    "val_interval": None,
    "filter_inter_by_user_or_item": False,
    "user_inter_num_interval": "[0,inf)",
    "item_inter_num_interval": "[0,inf)",
}


def recbole_config(
    model: str, data_root: Path, args: argparse.Namespace, overrides: dict | None = None
) -> Config:
    config_dict = {
        "data_path": str(data_root),
        **BENCHMARK_FILES_CONFIG,
        # Implicit feedback, no sampled negatives (Pop would otherwise count them as items).
        "train_neg_sample_args": None,
        # Full ranking over all items; split/order are ignored for benchmark files.
        "eval_args": {
            "split": {"RS": [0.8, 0.1, 0.1]},
            "order": "RO",
            "group_by": "user",
            "mode": "full",
        },
        "metrics": ["Recall", "NDCG"],
        "topk": [TOPK],
        "valid_metric": f"NDCG@{TOPK}",
        "metric_decimal_place": 12,
        "epochs": 1,  # TraditionalTrainer forces 1 for these models anyway
        "eval_step": 1,
        "seed": args.seed,
        "reproducibility": True,
        "use_gpu": False,
        "gpu_id": "",
        "show_progress": False,
        "save_dataset": False,
        "save_dataloaders": False,
        "log_wandb": False,
        "checkpoint_dir": str(data_root / "saved"),
        "worker": 0,
        # model hyperparameters
        "k": args.item_knn_neighbors,
        "shrink": args.item_knn_shrink,
        "knn_method": "item",
        "reg_weight": args.ease_regularization,
    }
    config_dict.update(overrides or {})
    # Config also parses sys.argv ("--key=value" would override the config): hide our arguments.
    argv, sys.argv = sys.argv, sys.argv[:1]
    try:
        return Config(model=model, dataset=DATASET_NAME, config_dict=config_dict)
    finally:
        sys.argv = argv


def check_dataset(dataset, built, train_rows, test_rows) -> dict[str, int]:
    """Fail unless RecBole kept every user, item and row of the split files."""
    users = {u for u, _ in train_rows} | {u for u, _ in test_rows}
    items = {i for _, i in train_rows} | {i for _, i in test_rows}
    rb_users = set(dataset.field2id_token[dataset.uid_field][1:].tolist())
    rb_items = set(dataset.field2id_token[dataset.iid_field][1:].tolist())
    train_ds, valid_ds, test_ds = built
    facts = {
        "n_users": dataset.user_num - 1,  # minus [PAD]
        "n_items": dataset.item_num - 1,
        "n_train": train_ds.inter_num,
        "n_valid": valid_ds.inter_num,
        "n_test": test_ds.inter_num,
    }
    problems = []
    if rb_users != users:
        problems.append(f"user vocabulary differs ({len(rb_users)} vs {len(users)})")
    if rb_items != items:
        problems.append(f"item vocabulary differs ({len(rb_items)} vs {len(items)})")
    for key, expected in (
        ("n_train", len(train_rows)),
        ("n_valid", len(test_rows)),
        ("n_test", len(test_rows)),
    ):
        if facts[key] != expected:
            problems.append(f"{key}: RecBole {facts[key]} vs files {expected}")
    if problems:
        raise SystemExit("RecBole changed the data: " + "; ".join(problems))
    train_items = {i for _, i in train_rows}
    facts["n_test_only_items"] = len(items - train_items)
    return facts


def run_model(
    label: str,
    model_name: str,
    data_root: Path,
    args,
    train_rows,
    test_rows,
    overrides: dict | None = None,
):
    seconds = {}
    started = time.perf_counter()
    config = recbole_config(model_name, data_root, args, overrides)
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    built = (train_data._dataset, valid_data._dataset, test_data._dataset)
    facts = check_dataset(dataset, built, train_rows, test_rows)
    seconds["data"] = time.perf_counter() - started

    started = time.perf_counter()
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    trainer.fit(train_data, valid_data=None, saved=False, verbose=False, show_progress=False)
    seconds["fit"] = time.perf_counter() - started
    extra = {}
    if model_name == "Pop":
        # Does RecBole's learned count equal each item's number of training rows?
        counts = Counter(item for _, item in train_rows)
        tokens = dataset.field2id_token[dataset.iid_field]
        learned = model.item_cnt.view(-1).tolist()
        extra["pop_count_equals_train_count"] = all(
            learned[idx] == counts.get(tokens[idx], 0) for idx in range(1, len(tokens))
        )

    started = time.perf_counter()
    result = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
    seconds["evaluate"] = time.perf_counter() - started
    seconds = {key: round(value, 3) for key, value in seconds.items()}

    # Each model run rebuilds the dataset; the test users must be the same every time.
    facts["n_eval_users"] = len(test_data.uid_list)
    metrics = {
        "recall@20": float(result[f"recall@{TOPK}"]),
        "ndcg@20": float(result[f"ndcg@{TOPK}"]),
        **extra,
    }
    print(
        f"{label:8s} recall@20={metrics['recall@20']:.6f} ndcg@20={metrics['ndcg@20']:.6f} "
        f"{seconds}",
        file=sys.stderr,
    )
    return metrics, seconds, facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--item-knn-neighbors", type=int, default=100)
    parser.add_argument("--item-knn-shrink", type=float, default=0.0)
    parser.add_argument("--ease-regularization", type=float, default=250.0)
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument(
        "--skip-extra",
        action="store_true",
        help="do not run the default-batch Pop variant (models_extra)",
    )
    args = parser.parse_args()
    split_dir = args.split_dir.resolve()
    out = args.out.resolve()

    logging.getLogger().setLevel(logging.WARNING)
    # RecBole 1.2.1 on pandas 2.3 / torch 2.13 emits FutureWarnings (chained fillna, amp API)
    # that do not affect these models.
    warnings.filterwarnings("ignore", category=FutureWarning)
    train_rows = read_split(split_dir / "train.tsv")
    test_rows = read_split(split_dir / "test.tsv")

    record = {"recbole_version": recbole.__version__, "models": {}, "seconds": {}}
    with tempfile.TemporaryDirectory(prefix="recbole-parity-") as tmp:
        data_root = Path(tmp)
        dataset_dir = data_root / DATASET_NAME
        dataset_dir.mkdir()
        write_atomic(dataset_dir / f"{DATASET_NAME}.train.inter", train_rows)
        write_atomic(dataset_dir / f"{DATASET_NAME}.valid.inter", test_rows)
        write_atomic(dataset_dir / f"{DATASET_NAME}.test.inter", test_rows)
        previous_cwd = os.getcwd()
        os.chdir(data_root)  # RecBole writes ./log_tensorboard (and logs) relative to the cwd
        try:
            facts_seen = None
            runs = [("models", label, spec) for label, spec in MODELS.items()]
            if not args.skip_extra:
                runs += [("models_extra", label, spec) for label, spec in EXTRA_MODELS.items()]
            for section, label, (model_name, overrides) in runs:
                metrics, seconds, facts = run_model(
                    label, model_name, data_root, args, train_rows, test_rows, overrides
                )
                if facts_seen is not None and facts != facts_seen:
                    raise SystemExit(f"data differs between model runs: {facts} vs {facts_seen}")
                facts_seen = facts
                record.setdefault(section, {})[label] = metrics
                record["seconds"][label] = seconds
        finally:
            os.chdir(previous_cwd)

    record.update(
        {
            "n_users": facts_seen["n_users"],
            "n_items": facts_seen["n_items"],
            "n_train": facts_seen["n_train"],
            "n_test": facts_seen["n_test"],
            "n_eval_users": facts_seen["n_eval_users"],
            "n_test_only_items": facts_seen["n_test_only_items"],
            "hyperparameters": {
                "item_knn_neighbors": args.item_knn_neighbors,
                "item_knn_shrink": args.item_knn_shrink,
                "ease_regularization": args.ease_regularization,
                "seed": args.seed,
            },
            "protocol": "full ranking over all items, each user's training items masked; "
            "recall = hits/|test items|, ndcg ideal DCG over min(|test items|, K)",
        }
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
