"""RecBole 1.2.1 side of the LightGCN speed comparison on Gowalla (LightGCN split).

Run with the RecBole venv's python (benchmarks/peers/setup_recbole.sh builds it), never semrec's:

    .venv/bin/python benchmarks/gowalla_split_files.py /tmp/semrec-speed/gowalla
    /work/peers/recbole-venv/bin/python benchmarks/peers/recbole_lightgcn_speed.py \
        --split-dir /tmp/semrec-speed/gowalla --epochs 1 \
        --out /tmp/semrec-speed/gowalla/recbole-lightgcn.json

It trains RecBole's LightGCN for --epochs epochs (BPR, one uniform negative per positive), timing
every training epoch, then runs a full-ranking evaluation on test (all items, each user's
training items masked; Recall@20, NDCG@20) and times it. The JSON written to --out holds the
versions, device, threads, the load/preprocess, model-build, per-epoch and evaluation seconds,
the metrics after the last epoch, peak RSS and the exact config dict given to RecBole.

For a learning curve (RecBole's time to accuracy), --eval-every N evaluates on test after every
N-th epoch too (outside the timed epochs), and --state-dir DIR makes the run resumable: after
every epoch the model, Adam's moments and the three random generators in play (torch's, the
training loader's shuffling generator, NumPy's, which draws the negatives) go to DIR/state.npz
(arrays only, no pickle) and the epoch records to DIR/epochs.json, each written atomically; a
run started on a DIR that holds a state continues after its last epoch, bit for bit as if it
had not stopped (checked on 300 Gowalla users: 3 epochs in one go and 2 + 1 resumed gave the same
losses and metrics), and refuses a DIR saved with other settings. --out is rewritten after
every epoch ("finished": false until the last), so a stopped run keeps its curve:

    /work/peers/recbole-venv/bin/python benchmarks/peers/recbole_lightgcn_speed.py \
        --split-dir /tmp/semrec-speed/gowalla --epochs 60 --eval-every 1 --threads 1 \
        --state-dir runs/recbole-lightgcn-gowalla-curve \
        --out benchmarks/results/recbole-lightgcn-gowalla-curve-cpu.json

Data handling is that of benchmarks/peers/recbole_parity.py, whose helpers are imported (see
its docstring for what RecBole does with benchmark files): train.tsv / test.tsv become atomic
benchmark files <name>.train/.valid/.test.inter (test doubles as "valid", which is never
evaluated: the fit loop runs with valid_data=None) in a temporary directory that is also the
working directory, and the script fails unless RecBole kept every user, item and row.

How the times are taken:

* Load/preprocess: create_dataset + data_preparation (reading the .inter files, remapping ids,
  building the negative sampler and the full-sort eval loader's per-user item sets).
* Model build: LightGCN.__init__, which builds the normalised adjacency through a scipy
  dok_matrix filled from a Python dict (model/general_recommender/lightgcn.py:82-126). The
  Trainer's construction is timed apart (trainer_build_seconds): it is mostly one-off imports.
* Epochs: the loop of Trainer.fit(valid_data=None, saved=False) (trainer/trainer.py:404-445 in
  1.2.1), written out: one Trainer._train_epoch per epoch, timed with perf_counter (+
  torch.cuda.synchronize on a GPU). That is the span RecBole's own "train time" log line
  measures: shuffling, negative sampling (done in the training loader's collate_fn), one full
  graph propagation per batch, backward, Adam step. The loss is summed over batches as RecBole
  does.
* Evaluation: Trainer.evaluate(load_best_model=False): one propagation, user x item scores,
  masking, top-k and the metrics.

RecBole points that matter here (RecBole 1.2.1 source, in the venv's site-packages/recbole):

* eval_batch_size is NOT a number of users for full ranking: FullSortEvalDataLoader
  (data/dataloader/general_dataloader.py:244-250) scores max(eval_batch_size // item_num, 1)
  users per batch, item_num counting [PAD]. RecBole's default 4096 would therefore score ONE
  Gowalla user (40,982 items) per batch, 29,858 batches. By default this script sets
  eval_batch_size = --eval-users-per-batch (2048, semrec's evaluation batch in
  benchmarks/configs/lightgcn-gowalla*.yaml) x item_num, so both sides score 2048 users per
  batch (a 2048 x 40,982 float32 score matrix, 336 MB); --eval-batch-size sets it raw.
* L2 term: LightGCN.calculate_loss uses EmbLoss (model/loss.py:66-88), which with RecBole's
  default require_pow=False adds the UNsquared norms ||E_u|| + ||E_i|| + ||E_j|| / batch.
  The LightGCN paper/reference code and semrec (training/losses.py l2_penalty) use the squared
  norms / (2 batch), which is EmbLoss with require_pow=True; that is the default here
  (--no-require-pow restores RecBole's default). No effect on speed worth measuring.
* weight_decay stays 0 (RecBole default): reg_weight is the only L2, as in the paper.
* Negatives: Sampler._uni_sampling draws from [1, item_num) (sampler/sampler.py:235-236),
  i.e. over all items in the vocabulary, test-only items included, and redraws those in the
  user's training items with a Python loop over the batch (sampler.py:173-190).
* torch >= 2.6 defaults torch.load to weights_only=True, which breaks RecBole's reload of its own
  checkpoint; RecBole's checkpoints are never written or loaded (the fit loop with saved=False,
  evaluate(load_best_model=False)); --state-dir is this script's own. The model evaluated is
  the one after the epoch named.
* Device: RecBole picks cuda iff gpu_id is non-empty and CUDA is available
  (config/configurator.py:476-494) and sets CUDA_VISIBLE_DEVICES = gpu_id. The venv built by
  setup_recbole.sh has CPU-only torch; --device cuda needs a CUDA build of torch there.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import recbole
import torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.utils import get_model, get_trainer, init_seed

# Sibling script (same folder, which is sys.path[0] when this file is run as a script).
from recbole_parity import BENCHMARK_FILES_CONFIG, check_dataset, read_split, write_atomic

DATASET_NAME = "semrec_speed"  # a name RecBole has no bundled copy of
MODEL = "LightGCN"
TOPK = 20


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split-dir", type=Path, required=True, help="train.tsv and test.tsv")
    parser.add_argument("--out", type=Path, required=True, help="JSON result file")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=2048, help="train_batch_size")
    parser.add_argument("--embedding-size", type=int, default=64)
    parser.add_argument("--n-layers", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--reg-weight", type=float, default=1e-4)
    parser.add_argument(
        "--require-pow",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="squared L2 norms / 2 as in the paper and semrec (RecBole's default: no)",
    )
    parser.add_argument(
        "--eval-users-per-batch",
        type=int,
        default=2048,
        help="users scored per evaluation batch (sets eval_batch_size to this x item_num)",
    )
    parser.add_argument(
        "--eval-batch-size",
        type=int,
        default=None,
        help="RecBole's raw eval_batch_size (score-matrix cells per batch); overrides "
        "--eval-users-per-batch",
    )
    parser.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="auto: cuda if available, else cpu",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument(
        "--eval-every",
        type=int,
        default=0,
        help="also evaluate on test after every N-th epoch (0: only after the last)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="save the training state here after every epoch and resume from it if present",
    )
    args = parser.parse_args()
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    if args.eval_every < 0:
        parser.error("--eval-every must be 0 or more")
    return args


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def build_config_dict(args: argparse.Namespace, data_root: Path, n_items: int) -> dict:
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device cuda: CUDA is not available to torch {torch.__version__}")
    item_num = n_items + 1  # RecBole's item_num counts the [PAD] item 0
    eval_batch_size = args.eval_batch_size or args.eval_users_per_batch * item_num
    return {
        "data_path": str(data_root),
        **BENCHMARK_FILES_CONFIG,  # "valid" = test, never evaluated
        # BPR with one uniformly drawn negative per training row.
        "train_neg_sample_args": {
            "distribution": "uniform",
            "sample_num": 1,
            "alpha": 1.0,
            "dynamic": False,
            "candidate_num": 0,
        },
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
        "epochs": args.epochs,
        "eval_step": 1,  # irrelevant: fit() gets no valid_data
        "stopping_step": 10**9,
        "train_batch_size": args.batch_size,
        "eval_batch_size": eval_batch_size,
        "learner": "adam",
        "learning_rate": args.learning_rate,
        "weight_decay": 0.0,
        "shuffle": True,
        "seed": args.seed,
        "reproducibility": True,
        "use_gpu": use_cuda,
        # RecBole sets CUDA_VISIBLE_DEVICES to gpu_id: keep what the caller chose.
        "gpu_id": os.environ.get("CUDA_VISIBLE_DEVICES", "0") if use_cuda else "",
        "show_progress": False,
        "save_dataset": False,
        "save_dataloaders": False,
        "log_wandb": False,
        "checkpoint_dir": str(data_root / "saved"),
        "worker": 0,
        "enable_amp": False,
        "enable_scaler": False,
        # LightGCN hyperparameters
        "embedding_size": args.embedding_size,
        "n_layers": args.n_layers,
        "reg_weight": args.reg_weight,
        "require_pow": args.require_pow,
    }


def write_json_atomic(path: Path, value) -> None:
    """semrec.atomic.write_text_atomic's job: semrec is not installed in RecBole's venv."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(value, indent=1) + "\n")
    os.replace(temporary, path)


# Settings that may change between a run and its resumption: where files are, how far to go.
RESUMABLE_DIFFERENCES = {"data_path", "checkpoint_dir", "epochs", "eval_batch_size"}


def save_state(state_dir: Path, model, trainer, train_data, epochs: list, config_dict) -> None:
    """Model, Adam and random-generator state as a .npz of arrays (no pickle), atomically."""
    arrays = {f"model.{k}": v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    for index, slots in trainer.optimizer.state_dict()["state"].items():
        for name, value in slots.items():
            arrays[f"adam.{index}.{name}"] = value.detach().cpu().numpy()
    arrays["rng.torch"] = torch.get_rng_state().numpy()
    arrays["rng.loader"] = train_data.generator.get_state().numpy()
    _, keys, position, has_gauss, gauss = np.random.get_state()
    arrays["rng.numpy.keys"] = keys
    arrays["rng.numpy.rest"] = np.array([position, has_gauss, gauss], dtype=np.float64)
    state_dir.mkdir(parents=True, exist_ok=True)
    temporary = state_dir / "state.tmp.npz"
    np.savez(temporary, **arrays)
    os.replace(temporary, state_dir / "state.npz")
    write_json_atomic(state_dir / "epochs.json", {"config": config_dict, "epochs": epochs})


def load_state(state_dir: Path | None, model, trainer, train_data, config_dict) -> list:
    """The epochs already run, after restoring their state; [] when there is none."""
    if state_dir is None or not (state_dir / "epochs.json").exists():
        return []
    saved = json.loads((state_dir / "epochs.json").read_text())
    changed = sorted(
        key
        for key in set(saved["config"]) | set(config_dict)
        if key not in RESUMABLE_DIFFERENCES and saved["config"].get(key) != config_dict.get(key)
    )
    if changed:
        raise SystemExit(f"{state_dir}: saved with other settings ({', '.join(changed)})")
    with np.load(state_dir / "state.npz", allow_pickle=False) as arrays:
        model.load_state_dict(
            {key[6:]: torch.from_numpy(arrays[key]) for key in arrays if key.startswith("model.")}
        )
        adam = trainer.optimizer.state_dict()
        adam["state"] = {}
        for key in (key for key in arrays if key.startswith("adam.")):
            _, index, name = key.split(".")
            adam["state"].setdefault(int(index), {})[name] = torch.from_numpy(arrays[key])
        trainer.optimizer.load_state_dict(adam)
        torch.set_rng_state(torch.from_numpy(arrays["rng.torch"]))
        train_data.generator.set_state(torch.from_numpy(arrays["rng.loader"]))
        position, has_gauss, gauss = arrays["rng.numpy.rest"]
        np.random.set_state(
            ("MT19937", arrays["rng.numpy.keys"], int(position), int(has_gauss), float(gauss))
        )
    print(f"resumed from {state_dir} after epoch {len(saved['epochs'])}", file=sys.stderr)
    return saved["epochs"]


def make_config(config_dict: dict) -> Config:
    # Config also parses sys.argv ("--key=value" would override the config): hide our arguments.
    argv, sys.argv = sys.argv, sys.argv[:1]
    try:
        return Config(model=MODEL, dataset=DATASET_NAME, config_dict=config_dict)
    finally:
        sys.argv = argv


def run(args: argparse.Namespace, data_root: Path, train_rows, test_rows, write) -> None:
    """Train and evaluate; write(record) after every epoch."""
    n_items = len({i for _, i in train_rows} | {i for _, i in test_rows})
    config_dict = build_config_dict(args, data_root, n_items)
    config = make_config(config_dict)
    device = config["device"]

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    seconds = {}
    started = time.perf_counter()
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    seconds["load_preprocess"] = time.perf_counter() - started
    built = (train_data._dataset, valid_data._dataset, test_data._dataset)
    facts = check_dataset(dataset, built, train_rows, test_rows)
    facts["item_num_with_pad"] = dataset.item_num
    facts["train_batches_per_epoch"] = len(train_data)
    facts["eval_users_per_batch"] = test_data.step
    facts["eval_batches"] = len(test_data)
    facts["n_eval_users"] = len(test_data.uid_list)

    started = time.perf_counter()
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(device)
    sync()
    seconds["model_build"] = time.perf_counter() - started
    started = time.perf_counter()
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    seconds["trainer_build"] = time.perf_counter() - started

    epochs = load_state(args.state_dir, model, trainer, train_data, config_dict)

    def evaluate() -> dict:
        sync()
        start = time.perf_counter()
        result = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
        sync()
        return {
            "eval_seconds": round(time.perf_counter() - start, 4),
            "recall@20": float(result[f"recall@{TOPK}"]),
            "ndcg@20": float(result[f"ndcg@{TOPK}"]),
        }

    def snapshot() -> dict:
        evaluated = [epoch for epoch in epochs if "recall@20" in epoch]
        record = {
            "device": str(device),
            "device_name": (
                torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
            ),
            "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "finished": len(epochs) == args.epochs,
            "epoch_seconds": [epoch["seconds"] for epoch in epochs],  # as the semrec side's
            "epochs": epochs,
            "load_preprocess_seconds": round(seconds["load_preprocess"], 4),
            "model_build_seconds": round(seconds["model_build"], 4),
            # Mostly one-off imports (torch.optim.Adam's first use imports torch._dynamo: ~2 s).
            "trainer_build_seconds": round(seconds["trainer_build"], 4),
            "data": facts,
            "config_dict": config_dict,
            "recbole_resolved": {
                "train_neg_sample_args": config["train_neg_sample_args"],
                "eval_batch_size": config["eval_batch_size"],
                "require_pow": config["require_pow"],
                "weight_decay": config["weight_decay"],
            },
        }
        if evaluated and evaluated[-1] is epochs[-1]:
            record["eval_seconds"] = epochs[-1]["eval_seconds"]
            record["metrics_after_last_epoch"] = {
                key: epochs[-1][key] for key in ("recall@20", "ndcg@20")
            }
        if device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(device)
            record["peak_gpu_memory_mib"] = round(peak / 2**20, 1)
        return record

    trainer.eval_collector.data_collect(train_data)  # what Trainer.fit does before its loop
    # Trainer.fit(valid_data=None, saved=False) is this loop: one _train_epoch per epoch.
    for epoch_idx in range(len(epochs), args.epochs):
        sync()
        start = time.perf_counter()
        loss = trainer._train_epoch(train_data, epoch_idx, show_progress=False)
        sync()
        epoch = {
            "epoch": epoch_idx + 1,
            "seconds": round(time.perf_counter() - start, 4),
            "loss": float(sum(loss) if isinstance(loss, tuple) else loss),
            "threads": torch.get_num_threads(),
        }
        last = epoch_idx + 1 == args.epochs
        if last or (args.eval_every and (epoch_idx + 1) % args.eval_every == 0):
            epoch.update(evaluate())
        epochs.append(epoch)
        print(json.dumps(epoch), file=sys.stderr)
        if args.state_dir:
            save_state(args.state_dir, model, trainer, train_data, epochs, config_dict)
        write(snapshot())
    if "recall@20" not in epochs[-1]:  # resumed after its last epoch, before its evaluation
        epochs[-1].update(evaluate())
        write(snapshot())


def main() -> None:
    args = parse_args()
    split_dir = args.split_dir.resolve()
    out = args.out.resolve()
    if args.state_dir is not None:  # before run() changes the working directory
        args.state_dir = args.state_dir.resolve()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    logging.getLogger().setLevel(logging.WARNING)
    # RecBole 1.2.1 on pandas 2.3 / torch 2.13 emits FutureWarnings (chained fillna, amp API).
    warnings.filterwarnings("ignore", category=FutureWarning)
    train_rows = read_split(split_dir / "train.tsv")
    test_rows = read_split(split_dir / "test.tsv")

    started = time.perf_counter()

    def write(measured: dict) -> None:
        record = {
            "model": MODEL,
            "split_dir": str(split_dir),
            "recbole_version": recbole.__version__,
            "torch_version": torch.__version__,
            "python_version": platform.python_version(),
            **measured,
            "wall_seconds_after_reading_files": round(time.perf_counter() - started, 3),
            # Linux reports ru_maxrss in KiB.
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "arguments": {key: str(value) for key, value in vars(args).items()},
        }
        write_json_atomic(out, record)

    with tempfile.TemporaryDirectory(prefix="recbole-lightgcn-speed-") as tmp:
        data_root = Path(tmp)
        dataset_dir = data_root / DATASET_NAME
        dataset_dir.mkdir()
        write_atomic(dataset_dir / f"{DATASET_NAME}.train.inter", train_rows)
        write_atomic(dataset_dir / f"{DATASET_NAME}.valid.inter", test_rows)
        write_atomic(dataset_dir / f"{DATASET_NAME}.test.inter", test_rows)
        previous_cwd = os.getcwd()
        os.chdir(data_root)  # RecBole writes ./log_tensorboard (and saved/) relative to the cwd
        try:
            run(args, data_root, train_rows, test_rows, write)
        finally:
            os.chdir(previous_cwd)
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
