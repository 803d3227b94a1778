"""Write the LightGCN Gowalla split (the given train/test parts) as split files for peers.

    .venv/bin/python benchmarks/gowalla_split_files.py /tmp/semrec-speed/gowalla

writes OUT_DIR/train.tsv and OUT_DIR/test.tsv (header `user_id<TAB>item_id`, external ids as
strings, duplicate pairs dropped), the format benchmarks/peers/recbole_*.py read. The rows are
semrec's own: ``load_dataset("gowalla")`` split with ``GivenSplit`` (rows tagged Part.TRAIN /
Part.TEST by the loader), written by the same function as the ML-100K parity files. Gowalla may
not be redistributed, so OUT_DIR must lie outside the repository.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from parity_ml100k import write_split_files  # benchmarks/ is sys.path[0] when run as a script
from semrec.data.registry import load_dataset
from semrec.data.splits import GivenSplit, split

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="folder outside the repository")
    parser.add_argument("--data-dir", type=Path, default=None, help="where the data sets live")
    args = parser.parse_args()
    out_dir = args.out_dir.expanduser().resolve()
    if out_dir.is_relative_to(REPO):
        raise SystemExit(f"{out_dir}: inside the repository; Gowalla must not be copied into it")

    data_split = split(load_dataset("gowalla", data_dir=args.data_dir), GivenSplit())
    if data_split.valid is not None:
        raise SystemExit("gowalla: the given split has a validation part; expected train/test")
    write_split_files(data_split, out_dir)
    for part in ("train", "test"):
        with (out_dir / f"{part}.tsv").open(encoding="utf-8") as handle:
            n_rows = sum(1 for _ in handle) - 1
        print(f"{out_dir / f'{part}.tsv'}: {n_rows} rows")
    print(data_split.summary())


if __name__ == "__main__":
    main()
