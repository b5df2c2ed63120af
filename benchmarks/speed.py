"""Speed benchmarks: ratios of medians, each pair measured side by side (interleaved) in one run.

    python benchmarks/speed.py [--data ../shared/data/atis] [--repeats 5] [--out benchmarks/results/speed.json]

Writes `speed.json` (schema in benchmarks/README.md). Absolute times are printed for context only: the machines are
shared and noisy, the ratios are what to compare across runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer

from multitask_bert.modeling import MultiTaskBertModel, default_backbone_path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "atis"


def load_utterances(data_dir: Path) -> list[str]:
    """ATIS test utterances when the benchmark data is there, else the embedded test split."""
    seq_in = data_dir / "test" / "seq.in"
    if seq_in.exists():
        return [line.strip() for line in seq_in.read_text().splitlines() if line.strip()]
    from multitask_bert.training.data import load_default_dataset

    return load_default_dataset()["test"]["text"]


def interleaved_medians(candidates: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Run each candidate once to warm up, then `repeats` rounds alternating between them; median seconds each."""
    for run in candidates.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, run in candidates.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def batches(texts: list[str], size: int) -> list[list[str]]:
    return [texts[start : start + size] for start in range(0, len(texts), size)]


def joint_vs_two_models(texts: list[str], batch_size: int, repeats: int) -> dict[str, float]:
    """Intent + entities (+ embedding) in one pass vs a sequence and a token classifier on the same backbone."""
    backbone = default_backbone_path()
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    intents = [f"intent_{number}" for number in range(22)]
    joint = MultiTaskBertModel.from_backbone(backbone, intent_labels=intents, ner_labels=NER).eval()
    classifier = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=22).eval()
    tagger = AutoModelForTokenClassification.from_pretrained(backbone, num_labels=len(NER)).eval()
    chunks = batches(texts, batch_size)

    @torch.inference_mode()
    def run_joint():
        for chunk in chunks:
            joint(**tokenizer(chunk, padding=True, return_tensors="pt"))

    @torch.inference_mode()
    def run_two():
        for chunk in chunks:
            encoded = tokenizer(chunk, padding=True, return_tensors="pt")
            classifier(**encoded)
            tagger(**encoded)

    return interleaved_medians({"joint": run_joint, "two_models": run_two}, repeats)


def embedding_vs_sentence_transformers(texts: list[str], batch_size: int, repeats: int) -> dict[str, float]:
    """Sentence embeddings: our model's forward vs `SentenceTransformer.encode` on the same backbone folder."""
    from sentence_transformers import SentenceTransformer

    backbone = default_backbone_path()
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    ours = MultiTaskBertModel.from_backbone(backbone, intent_labels=["a", "b"], ner_labels=["O"]).eval()
    reference = SentenceTransformer(backbone, device="cpu")
    # Same batching strategy on both sides: sentence-transformers sorts by length to cut padding.
    ordered = sorted(texts, key=len, reverse=True)
    chunks = batches(ordered, batch_size)

    @torch.inference_mode()
    def run_ours():
        for chunk in chunks:
            ours(**tokenizer(chunk, padding=True, truncation=True, max_length=256, return_tensors="pt"))

    def run_reference():
        reference.encode(texts, batch_size=batch_size, convert_to_tensor=True)

    return interleaved_medians({"ours": run_ours, "sentence_transformers": run_reference}, repeats)


def matmul_peak_flops(size: int = 1024, repeats: int = 10) -> float:
    """Measured fp32 matmul FLOP/s of this machine (the denominator of MFU)."""
    left, right = torch.randn(size, size), torch.randn(size, size)
    left @ right
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        left @ right
        times.append(time.perf_counter() - start)
    return 2 * size**3 / min(times)


NER = ["O"] + [f"{prefix}-{kind}" for kind in ("TIME", "DATE", "PERSON", "CITY") for prefix in ("B", "I")]


def peak_rss_mb(script: str) -> float:
    """Peak resident memory of a fresh Python process running `script` (MB)."""
    code = script + "\nimport resource; print('RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return int(output.rsplit("RSS", 1)[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-1-sample", type=int, default=64, help="utterances timed one by one at batch 1")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "speed.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    texts = load_utterances(args.data)
    single = texts[: args.batch_1_sample]
    ratios, seconds = {}, {}

    for label, sample, size in (("b32", texts, 32), ("b1", single, 1)):
        timing = joint_vs_two_models(sample, size, args.repeats)
        ratios[f"joint_vs_two_models_{label}"] = timing["two_models"] / timing["joint"]
        seconds[f"joint_vs_two_models_{label}"] = timing
    timing = embedding_vs_sentence_transformers(texts, 32, args.repeats)
    ratios["embed_vs_sentence_transformers_b32"] = timing["sentence_transformers"] / timing["ours"]
    seconds["embed_vs_sentence_transformers_b32"] = timing

    result = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}",
        "utterances": len(texts),
        "ratios": ratios,
        "median_seconds": seconds,
        "matmul_peak_gflops": matmul_peak_flops() / 1e9,
        "peak_rss_mb_self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
