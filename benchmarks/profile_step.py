"""Where a training step's time goes: torch.profiler over the Trainer steps of `speed.py`, in fp32 and under bf16.

    python benchmarks/profile_step.py [--data ../shared/data/atis] [--steps 10] [--rows 12]

Prints, per precision, the share of the profiled CPU time in a few groups of operators (matmuls, attention, the
optimizer, layer norm, ...) and the operators with the most self time. Shares, not seconds, are what to compare.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

import torch
from speed import DEFAULT_DATA, training_setup, training_trainer
from torch.profiler import ProfilerActivity, profile, schedule
from transformers import TrainerCallback

# Self time of operators whose name matches, in this order (the first match wins); the rest is "other".
GROUPS = {
    "matmuls (linear layers)": r"^aten::(mm|addmm|bmm|matmul|linear)$|mkldnn.*(matmul|linear)",
    "attention": r"scaled_dot_product|_flash_attention|_efficient_attention",
    "optimizer": r"_fused_adamw|_foreach_|adam",
    "layer norm": r"layer_norm",
    "dropout and its masks": r"dropout|bernoulli|native_dropout",
    "activations (GELU, softmax)": r"gelu|softmax",
    "word embedding gradient": r"embedding_dense_backward|embedding_backward|index_add|scatter_add",
    "dtype casts and copies": r"^aten::(copy_|_to_copy|to|clone|contiguous)$",
    "CRF and loss (logsumexp, gathers)": r"logsumexp|gather|nll_loss|cross_entropy|log_softmax|index_select|\bmax\b",
    "zeroing and filling gradients": r"^aten::(zero_|fill_|zeros_like|zeros)$",
}


class StepProfiler(TrainerCallback):
    """Advances the profiler's schedule at the end of every optimizer step."""

    def __init__(self, profiler: profile):
        self.profiler = profiler

    def on_step_end(self, args, state, control, **kwargs):
        self.profiler.step()


def profile_steps(data_dir: Path, steps: int, bf16: bool) -> profile:
    """Profile `steps` training steps after 2 warm-up steps."""
    train, labels, tokenizer = training_setup(data_dir)
    with tempfile.TemporaryDirectory() as output_dir:
        trainer = training_trainer(train, labels, tokenizer, output_dir, steps + 2, bf16)
        with profile(activities=[ProfilerActivity.CPU], schedule=schedule(wait=1, warmup=1, active=steps)) as prof:
            trainer.add_callback(StepProfiler(prof))
            trainer.train()
    return prof


def group_shares(prof: profile) -> dict[str, float]:
    """Share of all operators' self CPU time per group of GROUPS."""
    totals = dict.fromkeys([*GROUPS, "other"], 0.0)
    for event in prof.key_averages():
        group = next((name for name, pattern in GROUPS.items() if re.search(pattern, event.key)), "other")
        totals[group] += event.self_cpu_time_total
    overall = sum(totals.values())
    return {group: time / overall for group, time in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--steps", type=int, default=10, help="Profiled steps, after 2 warm-up steps.")
    parser.add_argument("--rows", type=int, default=12, help="Operators listed per precision.")
    args = parser.parse_args()
    for name, bf16 in (("fp32", False), ("bf16 autocast", True)):
        prof = profile_steps(args.data, args.steps, bf16)
        print(f"\n## {name}: {args.steps} steps, {torch.get_num_threads()} threads")
        for group, share in sorted(group_shares(prof).items(), key=lambda item: -item[1]):
            print(f"{share:6.1%}  {group}")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
