"""What embedding preservation costs the main job: teacher vectors cached before training vs computed on the fly.

    python benchmarks/preservation_cost.py [--steps 20] [--repeats 3]

On the embedded data with the packaged backbone and the main job's batch size, it times, alternating in one run:
Trainer steps without the term, steps with cached teacher vectors (the shipped way: one pass over the train split
before training, then a cosine per step), steps with a frozen copy of the starting model embedding every batch again
(what `MultiTaskTrainer` does for streamed data, which has no room for a column), and the one-off teacher pass. The
main job's time with each way is then projected from its step count. Writes `results/preservation_cost.json`.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import torch
from speed import TIMED_RUN_ARGUMENTS, cpu_model, interleaved_medians
from transformers import AutoTokenizer

from multitask_bert import MultiTaskBertModel, MultiTaskTrainer, MultiTaskTrainingArguments, default_backbone_path
from multitask_bert.training.cli.train import TRAIN_DEFAULTS
from multitask_bert.training.data import MultiTaskDataCollator, load_default_dataset, task_label_lists, tokenize_dataset
from multitask_bert.training.embedding_preservation import add_teacher_embeddings
from multitask_bert.training.recipe import recipe_epochs

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="Trainer steps per timed run.")
    parser.add_argument("--repeats", type=int, default=3, help="Alternating rounds (after one warm-up round).")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args()

    dataset = load_default_dataset()
    labels = task_label_lists(dataset)
    backbone = default_backbone_path()
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    train = tokenize_dataset(dataset, tokenizer, max_length=128)["train"]
    collator = MultiTaskDataCollator(tokenizer)
    batch_size = TRAIN_DEFAULTS["per_device_train_batch_size"]

    def new_model() -> MultiTaskBertModel:
        torch.manual_seed(0)
        return MultiTaskBertModel.from_backbone(backbone, intent_labels=labels["intent"], ner_labels=labels["ner"])

    with_teacher = add_teacher_embeddings(new_model(), train, collator)
    rows = [train[index] for index in range(len(train))]

    def steps_runner(weight: float, data):
        def run() -> float:
            with tempfile.TemporaryDirectory() as output_dir:
                training_args = MultiTaskTrainingArguments(
                    output_dir=output_dir,
                    max_steps=args.steps,
                    per_device_train_batch_size=batch_size,
                    learning_rate=TRAIN_DEFAULTS["learning_rate"],
                    train_sampling_strategy="group_by_length",
                    embedding_preservation_weight=weight,
                    **TIMED_RUN_ARGUMENTS,
                )
                trainer = MultiTaskTrainer(
                    model=new_model(), args=training_args, train_dataset=data, data_collator=collator
                )
                return trainer.train().metrics["train_runtime"]

        return run

    def teacher_pass() -> float:
        model = new_model()
        start = time.perf_counter()
        add_teacher_embeddings(model, train, collator)
        return time.perf_counter() - start

    medians = interleaved_medians(
        {
            "steps without the term": steps_runner(0.0, train),
            "steps with cached teacher vectors": steps_runner(1.0, with_teacher),
            # The way of streamed data: a train dataset that is not a `datasets.Dataset` (here a list of the same rows,
            # so the sampler is the same) is taught per batch by a frozen copy of the starting model.
            "steps with the teacher on the fly": steps_runner(1.0, rows),
            "teacher pass over the train split": teacher_pass,
        },
        args.repeats,
    )
    per_step = {name: seconds / args.steps for name, seconds in medians.items() if name.startswith("steps")}
    main_job_steps = recipe_epochs(len(train), batch_size, demo_data=True) * math.ceil(len(train) / batch_size)
    baseline = main_job_steps * per_step["steps without the term"]
    cached = (
        main_job_steps * per_step["steps with cached teacher vectors"] + medians["teacher pass over the train split"]
    )
    on_the_fly = main_job_steps * per_step["steps with the teacher on the fly"]
    result = {
        "cpu": cpu_model(),
        "torch_threads": torch.get_num_threads(),
        "steps": args.steps,
        "repeats": args.repeats,
        "median_seconds": medians,
        "main_job_steps": main_job_steps,
        "main_job_training_time_vs_without_the_term": {
            "cached": cached / baseline,
            "on the fly": on_the_fly / baseline,
        },
    }
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / "preservation_cost.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
