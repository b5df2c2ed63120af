"""Peak memory of `load_hf_dataset` against the size of the data: it should not grow with the rows.

    python benchmarks/data_memory.py [--rows 20000 200000]

For each row count, a JSONL file of that many generated utterances (words, an intent, BIO tags) is written to a
temporary folder, and a fresh Python process loads it with `load_hf_dataset("json", ...)` (and, for the streamed
form, reads every row); its peak resident memory (Linux's VmHWM of that process alone, `speed.peak_rss_mb`) is
reported beside the file's size. Writes `results/data_memory.json`.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

from speed import cpu_model, peak_rss_mb

RESULTS = Path(__file__).resolve().parent / "results"
WORDS = ["wake", "me", "up", "at", "call", "Anna", "tomorrow", "set", "a", "timer", "for", "ten", "minutes", "please"]
INTENTS = ["set_alarm", "call", "set_timer", "greet"]


def write_rows(path: Path, count: int) -> None:
    generator = random.Random(0)
    with path.open("w", encoding="utf-8") as out:
        for _ in range(count):
            tokens = generator.choices(WORDS, k=generator.randint(3, 20))
            tags = [generator.choice(["O", "O", "O", "B-TIME", "B-PERSON"]) for _ in tokens]
            out.write(json.dumps({"tokens": tokens, "intent": generator.choice(INTENTS), "ner_tags": tags}) + "\n")


def load_script(path: Path, cache_dir: Path, streaming: bool) -> str:
    labels = {"intent": [*INTENTS, "UNK"], "ner": ["O", "B-PERSON", "I-PERSON", "B-TIME", "I-TIME", "UNK"]}
    options = f"streaming=True, label_lists={labels!r}" if streaming else f"cache_dir={str(cache_dir)!r}"
    read = "sum(1 for _ in data['train'])" if streaming else "len(data['train'])"
    return (
        "import logging; logging.disable(logging.WARNING)\n"
        "from datasets.utils.logging import disable_progress_bar; disable_progress_bar()\n"
        "from multitask_bert import load_hf_dataset\n"
        f"data = load_hf_dataset('json', data_files={{'train': {str(path)!r}}}, {options})\n"
        f"assert {read} > 0\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args()
    measured = []
    with tempfile.TemporaryDirectory() as folder:
        for count in args.rows:
            path = Path(folder) / f"rows-{count}.jsonl"
            write_rows(path, count)
            row = {"rows": count, "file_mb": path.stat().st_size / 2**20}
            for streaming in (False, True):
                cache_dir = Path(folder) / f"cache-{count}"
                key = "streamed_peak_rss_mb" if streaming else "peak_rss_mb"
                row[key] = peak_rss_mb(load_script(path, cache_dir, streaming))
            measured.append(row)
            print(json.dumps(row), flush=True)
    result = {"cpu": cpu_model(), "runs": measured}
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / "data_memory.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
