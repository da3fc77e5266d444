"""Triage accuracy per category on the real-text corpus (tests/resources/corpus/failures.jsonl).

Run: .venv/bin/python bench/corpus_accuracy.py [--code DIR] [--misses]
`--code DIR` triages with another tree's `orchestrator` (e.g. an export of main) to compare
rules before and after a change; `--misses` lists every text triaged into another category.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--code", type=Path, help="the tree whose orchestrator triages")
    parser.add_argument("--misses", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(args.code.resolve() if args.code else ROOT))
    spec = importlib.util.spec_from_file_location("corpus", ROOT / "tests/helpers/corpus.py")
    assert spec and spec.loader
    corpus = sys.modules["corpus"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(corpus)
    accuracy, load, triaged = corpus.accuracy, corpus.load, corpus.triaged

    items = load()
    with tempfile.TemporaryDirectory() as repo:
        got = triaged(items, Path(repo))
    for category, (right, total) in accuracy(items, got).items():
        print(f"{category:<26} {right:>4}/{total:<4} {right / total:6.2f}")
    if args.misses:
        for item in items:
            if got[item.id] != item.category:
                first = (
                    (item.result.message or "").splitlines()[0][:90] if item.result.message else ""
                )
                print(f"#{item.id} {item.category} -> {got[item.id]}: {first}")


if __name__ == "__main__":
    main()
