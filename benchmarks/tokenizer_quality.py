"""Item tokenizer quality before any decoder is trained (issue 5).

    .venv/bin/python benchmarks/tokenizer_quality.py --data-dir ../shared/data \
        --dataset amazon-beauty-p5 [--epochs 100] [--threads 1]

Encodes the items' text with all-MiniLM-L6-v2 (cached in the semrec cache), tokenizes the
unit text vectors with RQ-VAE (3 x 256, TIGER's setting) and residual k-means (3 x 256), and
for reference the trivial random / sequential indexings and, when the data set folder has
one, the LETTER codes shipped with it (``*.index.json[.gz]``). Prints the quality tables
(codebook usage and entropy per level, collision rate before de-duplication, reconstruction
error relative to the input variance) and writes
``benchmarks/results/tokenizer-quality-<dataset>.json`` with the command, commit and device.

Collaborative and concatenated codes (RQ-VAE on a trained model's item vectors, alone or
next to the text vectors, each part unit length):

    .venv/bin/python benchmarks/tokenizer_quality.py --data-dir ../shared/data \
        --dataset amazon-beauty-p5 --inputs collaborative concat --collaborative runs/sasrec-beauty

write ``tokenizer-quality-<dataset>-collaborative-concat.json`` (and, with ``--codes-out``,
``<dataset>-rqvae-collaborative.safetensors`` / ``-rqvae-concat``; with text input, the given
LETTER codes are written as ``<dataset>-letter.safetensors``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))

from record_result import git_commit
from semrec.atomic import write_text_atomic
from semrec.data.registry import load_dataset, locate_dataset
from semrec.encoders import DEFAULT_MODEL, SentenceEncoder, encode_catalog
from semrec.models import load_model
from semrec.models.generative.tokenizers import (
    ResidualKMeansTokenizer,
    RQVAETokenizer,
    collaborative_vectors,
    load_given_codes,
    quality_table,
    save_codes,
    tokenize,
    tokenizer_input,
    tokenizer_quality,
)

RESULTS = Path(__file__).parent / "results"


def largest_group_popularity(raw_codes: np.ndarray, popularity: np.ndarray) -> dict[str, float]:
    """How many interactions the items of the largest collision group have, next to all items
    (a large group of rarely seen items means their input vectors were barely trained)."""
    _, group, sizes = np.unique(raw_codes, axis=0, return_inverse=True, return_counts=True)
    members = np.flatnonzero(group.ravel() == np.argmax(sizes))
    return {
        "size": len(members),
        "median_interactions": float(np.median(popularity[members])),
        "max_interactions": float(popularity[members].max()),
        "median_interactions_all_items": float(np.median(popularity)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--dataset", default="amazon-beauty-p5")
    parser.add_argument("--epochs", type=int, default=None, help="RQ-VAE epochs (default: config)")
    parser.add_argument("--codebook-size", type=int, default=256)
    parser.add_argument("--levels", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if any)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--note", default="", help="anything a reader must know")
    parser.add_argument(
        "--inputs",
        nargs="+",
        choices=["text", "collaborative", "concat"],
        default=["text"],
        help="what to tokenize: text vectors (RQ-VAE, residual k-means and the reference "
        "indexings), a trained model's item vectors, or both concatenated (RQ-VAE)",
    )
    parser.add_argument(
        "--collaborative",
        type=Path,
        default=None,
        help="run or model directory whose item vectors are the collaborative input",
    )
    parser.add_argument(
        "--codes-out",
        type=Path,
        default=None,
        help="also write each tokenizer's codes to DIR/<dataset>-<tokenizer>.safetensors "
        "(the `codes` file of a tiger model)",
    )
    args = parser.parse_args()
    load_at_start = round(os.getloadavg()[0], 2)
    if args.threads:
        torch.set_num_threads(args.threads)

    dataset = load_dataset(args.dataset, args.data_dir)
    item_ids = dataset.interactions.item_ids
    popularity = np.asarray(dataset.interactions.user_items.sum(axis=0)).ravel()
    text = collaborative = None
    if {"text", "concat"} & set(args.inputs):
        if dataset.catalog is None:
            sys.exit(f"{args.dataset} has no item text to encode")
        text = encode_catalog(dataset.catalog, SentenceEncoder(DEFAULT_MODEL)).embeddings
    if {"collaborative", "concat"} & set(args.inputs):
        if args.collaborative is None:
            sys.exit("--inputs collaborative/concat need --collaborative RUN_OR_MODEL_DIR")
        model_dir = args.collaborative
        model_dir = model_dir / "model" if (model_dir / "model").is_dir() else model_dir
        model = load_model(model_dir)
        collaborative = collaborative_vectors(model, item_ids)
        collaborative_source = f"collaborative:{model.name}:{args.collaborative}"
    text_source = f"text:{DEFAULT_MODEL}"
    prepared = {}  # input name -> (description, tokenizer input vectors)
    for input_name in args.inputs:
        if input_name == "text":
            prepared[input_name] = (text_source, tokenizer_input(text=text))
        elif input_name == "collaborative":
            prepared[input_name] = (
                collaborative_source,
                tokenizer_input(collaborative=collaborative),
            )
        else:
            vectors = tokenizer_input(text=text, collaborative=collaborative)
            prepared[input_name] = (f"{text_source}+{collaborative_source}", vectors)
    shape = {"n_levels": args.levels, "codebook_size": args.codebook_size, "seed": args.seed}

    qualities, seconds, cpu_seconds, details, inputs = {}, {}, {}, {}, {}
    rqvae_params = dict(shape) | ({"epochs": args.epochs} if args.epochs else {})
    runs = []  # (result name, input name, tokenizer)
    for input_name in args.inputs:
        suffix = "" if input_name == "text" else f"-{input_name}"
        runs.append(
            (f"rqvae{suffix}", input_name, RQVAETokenizer(device=args.device, **rqvae_params))
        )
        if input_name == "text":
            runs.append(
                ("rkmeans", input_name, ResidualKMeansTokenizer(device=args.device, **shape))
            )
    for name, input_name, tokenizer in runs:
        source, vectors = prepared[input_name]
        inputs[name] = source
        input_source = {"input": source, "dataset": args.dataset}
        started, cpu_started = time.perf_counter(), time.process_time()
        tokenization = tokenizer.fit(vectors).tokenize(vectors, input_source)
        seconds[name] = round(time.perf_counter() - started, 1)
        cpu_seconds[name] = round(time.process_time() - cpu_started, 1)
        qualities[name] = tokenization.quality
        if args.codes_out is not None:
            args.codes_out.mkdir(parents=True, exist_ok=True)
            save_codes(
                args.codes_out / f"{args.dataset}-{name}.safetensors", tokenization.codes, item_ids
            )
        details[name] = {
            "config": tokenizer.config.model_dump(mode="json"),
            "largest_group": largest_group_popularity(tokenization.raw_codes, popularity),
        }
        print(f"{name}: {seconds[name]} s ({cpu_seconds[name]} s CPU)", flush=True)
        if isinstance(tokenizer, RQVAETokenizer):
            details[name]["history_last"] = tokenizer.history[-1]
            details[name]["restarts_total"] = [
                sum(record["restarted"][level] for record in tokenizer.history)
                for level in range(args.levels)
            ]
    if "text" in args.inputs:
        vectors = prepared["text"][1]
        for method in ("random", "sequential"):
            params = {"codebook_size": args.codebook_size}
            params |= {"seed": 0} if method == "random" else {}
            qualities[method] = tokenize(vectors, method, **params).quality

    folder = locate_dataset(args.dataset, args.data_dir)
    given = sorted(folder.glob("*.index.json")) + sorted(folder.glob("*.index.json.gz"))
    if given and "text" in args.inputs:
        codes = load_given_codes(given[0], item_ids)
        n_given = codes.source["n_given_levels"]
        letter_raw = codes.codes[:, :n_given]
        qualities["LETTER (given)"] = tokenizer_quality(letter_raw, codes.level_sizes[:n_given])
        if args.codes_out is not None:  # the given codes as a tiger `codes` file too
            save_codes(args.codes_out / f"{args.dataset}-letter.safetensors", codes, item_ids)
        qualities["LETTER 3 levels"] = tokenizer_quality(letter_raw[:, :3], codes.level_sizes[:3])

    table = quality_table(qualities)
    print(table)
    name = f"tokenizer-quality-{args.dataset}"
    if args.inputs != ["text"]:
        name += "-" + "-".join(args.inputs)
    record = {
        "name": name,
        "command": shlex.join([".venv/bin/python", *sys.argv]),
        "git_commit": git_commit(),
        "device": str(runs[0][2].device),
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "dataset": args.dataset,
        "data_fingerprint": dataset.interactions.fingerprint(),
        "n_items": len(item_ids),
        "input": {name: f"{source} (unit length per part)" for name, source in inputs.items()},
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        #: 1-minute load average when the run started and ended (others' jobs slow wall time)
        "load_average": [load_at_start, round(os.getloadavg()[0], 2)],
        "note": args.note,
        "quality": qualities,
        "details": details,
        "table": table,
    }
    if not args.no_write:
        out = RESULTS / f"{name}.json"
        write_text_atomic(out, json.dumps(record, indent=1, default=str) + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
