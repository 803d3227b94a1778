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

import torch

sys.path.insert(0, str(Path(__file__).parent))

from record_result import git_commit
from semrec.atomic import write_text_atomic
from semrec.data.registry import load_dataset, locate_dataset
from semrec.encoders import DEFAULT_MODEL, SentenceEncoder, encode_catalog
from semrec.models.generative.tokenizers import (
    ResidualKMeansTokenizer,
    RQVAETokenizer,
    load_given_codes,
    quality_table,
    save_codes,
    tokenize,
    tokenizer_input,
    tokenizer_quality,
)

RESULTS = Path(__file__).parent / "results"


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
    if dataset.catalog is None:
        sys.exit(f"{args.dataset} has no item text to encode")
    item_ids = dataset.interactions.item_ids
    encoded = encode_catalog(dataset.catalog, SentenceEncoder(DEFAULT_MODEL))
    vectors = tokenizer_input(text=encoded.embeddings)
    input_source = {"input": f"text:{DEFAULT_MODEL}", "dataset": args.dataset}
    shape = {"n_levels": args.levels, "codebook_size": args.codebook_size, "seed": args.seed}

    qualities, seconds, cpu_seconds, details = {}, {}, {}, {}
    rqvae_params = dict(shape) | ({"epochs": args.epochs} if args.epochs else {})
    tokenizers = {
        "rqvae": RQVAETokenizer(device=args.device, **rqvae_params),
        "rkmeans": ResidualKMeansTokenizer(device=args.device, **shape),
    }
    for name, tokenizer in tokenizers.items():
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
        details[name] = {"config": tokenizer.config.model_dump(mode="json")}
        print(f"{name}: {seconds[name]} s ({cpu_seconds[name]} s CPU)", flush=True)
    details["rqvae"]["history_last"] = tokenizers["rqvae"].history[-1]
    details["rqvae"]["restarts_total"] = [
        sum(record["restarted"][level] for record in tokenizers["rqvae"].history)
        for level in range(args.levels)
    ]
    for method in ("random", "sequential"):
        params = {"codebook_size": args.codebook_size} | ({"seed": 0} if method == "random" else {})
        qualities[method] = tokenize(vectors, method, **params).quality

    folder = locate_dataset(args.dataset, args.data_dir)
    given = sorted(folder.glob("*.index.json")) + sorted(folder.glob("*.index.json.gz"))
    if given:
        codes = load_given_codes(given[0], item_ids)
        n_given = codes.source["n_given_levels"]
        letter_raw = codes.codes[:, :n_given]
        qualities["LETTER (given)"] = tokenizer_quality(letter_raw, codes.level_sizes[:n_given])
        qualities["LETTER 3 levels"] = tokenizer_quality(letter_raw[:, :3], codes.level_sizes[:3])

    table = quality_table(qualities)
    print(table)
    record = {
        "name": f"tokenizer-quality-{args.dataset}",
        "command": shlex.join([".venv/bin/python", *sys.argv]),
        "git_commit": git_commit(),
        "device": str(tokenizers["rqvae"].device),
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "dataset": args.dataset,
        "data_fingerprint": dataset.interactions.fingerprint(),
        "n_items": len(item_ids),
        "input": input_source["input"] + " (unit length)",
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
        out = RESULTS / f"tokenizer-quality-{args.dataset}.json"
        write_text_atomic(out, json.dumps(record, indent=1, default=str) + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
