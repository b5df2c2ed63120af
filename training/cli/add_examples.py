"""`multitask-bert add-examples`: give a trained model labelled utterances of a sentence-level task, without training.

    multitask-bert add-examples MODEL_DIR --data new_intents.jsonl          # {"text": ..., "intent": ...} per line
    multitask-bert add-examples MODEL_DIR --remove play_music               # forget a label's examples

The examples' vectors go into the weights and their texts into the config (so they can be embedded again after
further training); the pipeline, remote code and the ONNX export answer from them (`MultiTaskBertModel.add_examples`).
"""

from __future__ import annotations

from pathlib import Path

from ...hub_card.model_card import CARD_INPUTS_FILE, load_card_inputs, write_model_card
from ...modeling import MultiTaskBertModel
from ...modeling.configuration_multitask_bert import DEFAULT_SENTENCE_TASK
from ..data import read_examples
from ..loading import check_model_location, load_tokenizer
from .parsing import CommandParser


def build_parser() -> CommandParser:
    parser = CommandParser(
        prog="multitask-bert add-examples",
        description="Store labelled utterances of a sentence-level task in a saved model: labels the head lacks are "
        "then answered from them (no training), known ones corrected where their examples are nearer.",
    )
    parser.add_argument("model", help="saved model folder (or Hub id, with --output-dir)")
    parser.add_argument("--data", help='JSONL file, one {"text": ..., "<task>": label} object per line')
    parser.add_argument("--task", help="sentence-level task (default: the model's only one, else intent)")
    parser.add_argument("--remove", nargs="+", metavar="LABEL", default=[], help="forget these labels' examples")
    parser.add_argument("--output-dir", help="write the model here (default: MODEL itself)")
    parser.add_argument("--batch-size", type=int, default=32)
    return parser


def chosen_task(model: MultiTaskBertModel, task: str | None) -> str:
    """The task named, else the model's only sentence-level task, else the default one; a `ValueError` otherwise."""
    config = model.config
    if task is None:
        task = config.sentence_tasks[0] if len(config.sentence_tasks) == 1 else DEFAULT_SENTENCE_TASK
    if task not in config.tasks:
        raise ValueError(f"--task {task}: the model has no such task; its tasks are {list(config.tasks)}.")
    if config.tasks[task]["level"] != "sentence":
        raise ValueError(f"--task {task}: a token-level task; examples are for sentence-level tasks.")
    return task


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.data is None and not args.remove:
        parser.error("give --data (examples to add) or --remove (labels to forget)")
    check_model_location(args.model)
    if args.output_dir is None and not Path(args.model).is_dir():
        raise ValueError(f"{args.model} is not a local folder: give --output-dir to write the model to.")
    output_dir = Path(args.output_dir or args.model)
    model = MultiTaskBertModel.from_pretrained(args.model)
    tokenizer = load_tokenizer(args.model)
    task = chosen_task(model, args.task)
    if args.remove:
        model.remove_examples(task, args.remove)
    if args.data is not None:
        texts, labels = read_examples(args.data, task)
        model.add_examples(task, texts, labels, tokenizer, batch_size=args.batch_size)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    if (Path(args.model) / CARD_INPUTS_FILE).is_file():
        write_model_card(output_dir, **load_card_inputs(args.model))
    counts = model.example_counts(task)
    new = [label for label in counts if label not in model.config.task_labels(task)]
    print(f"{task}: {sum(counts.values())} examples of {len(counts)} labels ({len(new)} not in the head: {new})")
    print(f"wrote {output_dir}")
    return 0
