"""Speed benchmarks: ratios of medians, each pair measured side by side (interleaved) in one run.

    python benchmarks/speed.py [--data ../shared/data/atis] [--repeats 5] [--out benchmarks/results/speed.json]
    python benchmarks/speed.py --training-only --out benchmarks/results/speed_training.json

Writes `speed.json` (schema in benchmarks/README.md). Absolute times are printed for context only: the machines are
shared and noisy, the ratios are what to compare across runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from datasets import Dataset
from transformers import (
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    PreTrainedTokenizerBase,
)

from multitask_bert import MultiTaskBertModel, MultiTaskDataCollator, MultiTaskTrainer, default_backbone_path
from multitask_bert.training.training_args import MultiTaskTrainingArguments, cpu_has_native_bf16

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "atis"


def load_utterances(data_dir: Path) -> list[str]:
    """ATIS test utterances when the benchmark data is there, else the embedded test split."""
    seq_in = data_dir / "test" / "seq.in"
    if seq_in.exists():
        return [line.strip() for line in seq_in.read_text().splitlines() if line.strip()]
    from multitask_bert.training.data import load_default_dataset

    return load_default_dataset()["test"]["text"]


def interleaved_medians(candidates: dict[str, Callable[[], float | None]], repeats: int) -> dict[str, float]:
    """Run each candidate once to warm up, then `repeats` rounds alternating between them; median seconds each.
    A candidate that returns a number reports its own timed part (e.g. training without the setup)."""
    for run in candidates.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, run in candidates.items():
            start = time.perf_counter()
            own_seconds = run()
            times[name].append(own_seconds if own_seconds is not None else time.perf_counter() - start)
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
    """Sentence embeddings: our model's embedding path (`get_text_features`, which sentence-transformers also calls)
    vs `SentenceTransformer.encode` on the same backbone folder."""
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
            batch = tokenizer(chunk, padding=True, truncation=True, max_length=256, return_tensors="pt")
            ours.get_text_features(**batch)

    def run_reference():
        reference.encode(texts, batch_size=batch_size, convert_to_tensor=True)

    return interleaved_medians({"ours": run_ours, "sentence_transformers": run_reference}, repeats)


def onnx_vs_eager(texts: list[str], model_dir: Path, onnx_dir: Path, repeats: int) -> dict[str, float]:
    """Batch-1 latency over `texts`: PyTorch eager vs onnxruntime fp32 vs onnxruntime dynamic int8."""
    from multitask_bert import OnnxMultiTaskModel, export_onnx
    from multitask_bert.training.onnx import INT8_FILE

    export_onnx(model_dir, onnx_dir, quantize="int8")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoded = [tokenizer([text], return_tensors="pt") for text in texts]
    models = {
        "eager": MultiTaskBertModel.from_pretrained(model_dir).eval(),
        "onnx_fp32": OnnxMultiTaskModel.from_pretrained(onnx_dir),
        "onnx_int8": OnnxMultiTaskModel.from_pretrained(onnx_dir, file_name=INT8_FILE),
    }

    def runner(model):
        @torch.inference_mode()
        def run():
            for inputs in encoded:
                model(**inputs)

        return run

    return interleaved_medians({name: runner(model) for name, model in models.items()}, repeats)


# Trainer arguments of every timed training run: no checkpoints, logs or progress bars, one seed.
TIMED_RUN_ARGUMENTS = dict(save_strategy="no", report_to="none", disable_tqdm=True, logging_strategy="no", seed=0)


def training_setup(data_dir: Path) -> tuple[Dataset, dict[str, list[str]], PreTrainedTokenizerBase]:
    """The train split of `data_dir` (else of the embedded data), tokenized, its tasks' labels, and the tokenizer."""
    from multitask_bert.training.data import load_data, load_default_dataset, task_label_lists, tokenize_dataset

    dataset = load_data(data_dir) if data_dir.exists() else load_default_dataset()
    tokenizer = AutoTokenizer.from_pretrained(default_backbone_path())
    return tokenize_dataset(dataset, tokenizer, max_length=50)["train"], task_label_lists(dataset), tokenizer


def training_trainer(
    train: Dataset,
    labels: dict[str, list[str]],
    tokenizer: PreTrainedTokenizerBase,
    output_dir: str,
    steps: int,
    bf16: bool,
    padding: str = "dynamic",
    batch_size: int = 32,
) -> MultiTaskTrainer:
    """A freshly initialised model of the recipe (with a CRF) and its Trainer for `steps` steps: dynamic padding with
    length grouping, or every batch padded to 50 tokens (`padding="fixed"`, random order)."""
    torch.manual_seed(0)
    model = MultiTaskBertModel.from_backbone(
        default_backbone_path(), intent_labels=labels["intent"], ner_labels=labels["ner"], use_crf=True
    )
    if padding == "fixed":
        collator, sampling = MultiTaskDataCollator(tokenizer, padding="max_length", max_length=50), "random"
    else:
        collator, sampling = MultiTaskDataCollator(tokenizer), "group_by_length"
    args = MultiTaskTrainingArguments(
        output_dir=output_dir,
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        train_sampling_strategy=sampling,
        bf16=bf16,
        **TIMED_RUN_ARGUMENTS,
    )
    return MultiTaskTrainer(model=model, args=args, train_dataset=train, data_collator=collator)


def training_speed(data_dir: Path, steps: int, repeats: int) -> dict:
    """Trainer steps at batch 32 with dynamic padding + length grouping vs padding every batch to a fixed 50 tokens
    (as the JointBERT reference does), the dynamic run under bf16 autocast, and that at batch 64 for half the steps
    (the same examples); tokens/s and MFU of the dynamic batch-32 runs against this machine's fp32 and bf16 matmul
    peaks."""
    train, labels, tokenizer = training_setup(data_dir)
    real_tokens_per_example = statistics.mean(sum(mask) for mask in train["attention_mask"])
    settings = {
        "dynamic": ("dynamic", False, 32),
        "fixed": ("fixed", False, 32),
        "dynamic_bf16": ("dynamic", True, 32),
        "dynamic_bf16_batch64": ("dynamic", True, 64),
    }

    def runner(name: str):
        padding, bf16, batch_size = settings[name]

        def run():
            with tempfile.TemporaryDirectory() as output_dir:
                trainer = training_trainer(
                    train, labels, tokenizer, output_dir, max(1, steps * 32 // batch_size), bf16, padding, batch_size
                )
                return trainer.train().metrics["train_runtime"]

        return run

    medians = interleaved_medians({name: runner(name) for name in settings}, repeats)
    model = MultiTaskBertModel.from_backbone(
        default_backbone_path(), intent_labels=labels["intent"], ner_labels=labels["ner"]
    )
    non_embedding = sum(p.numel() for n, p in model.named_parameters() if "embeddings" not in n)
    tokens_per_second = {
        name: steps * 32 * real_tokens_per_example / medians[name] for name in ("dynamic", "dynamic_bf16")
    }
    flops = {name: 6 * non_embedding * value for name, value in tokens_per_second.items()}
    peak_flops = {"dynamic": matmul_peak_flops(torch.float32), "dynamic_bf16": matmul_peak_flops(torch.bfloat16)}
    return {
        "ratios": {
            "dynamic_vs_fixed_padding_epoch": medians["fixed"] / medians["dynamic"],
            "bf16_vs_fp32_epoch": medians["dynamic"] / medians["dynamic_bf16"],
            "bf16_batch64_vs_fp32_epoch": medians["dynamic"] / medians["dynamic_bf16_batch64"],
        },
        "median_seconds": {"train_steps": medians},
        "train_tokens_per_second": tokens_per_second["dynamic"],
        "train_gflops_per_second": flops["dynamic"] / 1e9,
        "matmul_peak_gflops": peak_flops["dynamic"] / 1e9,
        "mfu_train": flops["dynamic"] / peak_flops["dynamic"],
        "train_tokens_per_second_bf16": tokens_per_second["dynamic_bf16"],
        "matmul_peak_gflops_bf16": peak_flops["dynamic_bf16"] / 1e9,
        "mfu_train_bf16": flops["dynamic_bf16"] / peak_flops["dynamic_bf16"],
    }


def pipeline_peak_rss(model_dir: Path, texts: list[str]) -> dict[str, float]:
    """Peak RSS of a fresh process that loads the pipeline and runs it over `texts` at batch 1 and 32."""
    results = {}
    for batch_size in (1, 32):
        script = (
            "from transformers import pipeline\n"
            f"nlu = pipeline(model={str(model_dir)!r}, trust_remote_code=True)\n"
            f"nlu({texts!r}, batch_size={batch_size})"
        )
        results[f"pipeline_b{batch_size}"] = peak_rss_mb(script)
    return results


def throughput_by_batch_size(texts: list[str], sizes: tuple[int, ...], repeats: int) -> dict[str, float]:
    """Utterances per second of the joint model (tokenization included) at several batch sizes."""
    backbone = default_backbone_path()
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    model = MultiTaskBertModel.from_backbone(backbone, intent_labels=["a", "b"], ner_labels=NER).eval()

    def runner(size: int):
        @torch.inference_mode()
        def run():
            for chunk in batches(texts, size):
                model(**tokenizer(chunk, padding=True, return_tensors="pt"))

        return run

    medians = interleaved_medians({str(size): runner(size) for size in sizes}, repeats)
    return {size: len(texts) / seconds for size, seconds in medians.items()}


def matmul_peak_flops(dtype: torch.dtype = torch.float32, size: int = 1024, repeats: int = 10) -> float:
    """Measured matmul FLOP/s of this machine in `dtype` (the denominator of MFU)."""
    left, right = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    left @ right
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        left @ right
        times.append(time.perf_counter() - start)
    return 2 * size**3 / min(times)


NER = ["O"] + [f"{prefix}-{kind}" for kind in ("TIME", "DATE", "PERSON", "CITY") for prefix in ("B", "I")]


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else what `platform` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


# The child's own peak, read from /proc after the work. Not `ru_maxrss`: Linux carries it across `exec`, so a child
# of a 2 GB benchmark process reports at least 2 GB whatever it does.
PEAK_RSS_PROBE = (
    "\nimport pathlib, re\n"
    "print('RSS', re.search(r'VmHWM:\\s+(\\d+) kB', pathlib.Path('/proc/self/status').read_text()).group(1))"
)


def peak_rss_mb(script: str) -> float:
    """Peak resident memory of a fresh Python process running `script` (MB, Linux's VmHWM of that process alone)."""
    output = subprocess.run(
        [sys.executable, "-c", script + PEAK_RSS_PROBE], capture_output=True, text=True, check=True
    ).stdout
    return int(output.rsplit("RSS", 1)[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-1-sample", type=int, default=64, help="utterances timed one by one at batch 1")
    parser.add_argument("--train-steps", type=int, default=20, help="Trainer steps per timed training run")
    parser.add_argument("--training-only", action="store_true", help="Only the training runs and the matmul peaks.")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "speed.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    machine = (
        f"{cpu_model()}, native bf16: {cpu_has_native_bf16()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}"
    )
    result = {"machine": machine, **training_speed(args.data, args.train_steps, max(2, args.repeats // 2))}
    if not args.training_only:
        inference = inference_report(args)
        result["ratios"] = {**inference.pop("ratios"), **result["ratios"]}
        result["median_seconds"] = {**inference.pop("median_seconds"), **result["median_seconds"]}
        result.update(inference)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def inference_report(args: argparse.Namespace) -> dict:
    """The inference comparisons (ratios and median seconds), memory and throughput."""
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

    with tempfile.TemporaryDirectory() as scratch:
        model_dir = Path(scratch) / "model"
        backbone = default_backbone_path()
        intents = [f"intent_{number}" for number in range(22)]
        MultiTaskBertModel.from_backbone(backbone, intent_labels=intents, ner_labels=NER).save_pretrained(model_dir)
        AutoTokenizer.from_pretrained(backbone).save_pretrained(model_dir)

        timing = onnx_vs_eager(single, model_dir, Path(scratch) / "onnx", args.repeats)
        ratios["onnx_fp32_vs_eager_b1"] = timing["eager"] / timing["onnx_fp32"]
        ratios["onnx_int8_vs_eager_b1"] = timing["eager"] / timing["onnx_int8"]
        seconds["onnx_vs_eager_b1"] = timing
        peak_rss = pipeline_peak_rss(model_dir, texts[:256])

    return {
        "utterances": len(texts),
        "ratios": ratios,
        "median_seconds": seconds,
        "peak_rss_mb": peak_rss,
        "utterances_per_second_by_batch_size": throughput_by_batch_size(
            texts[:256], (1, 4, 16, 32, 64), max(2, args.repeats // 2)
        ),
    }


if __name__ == "__main__":
    main()
