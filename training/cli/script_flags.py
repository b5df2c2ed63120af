"""What `train` does with the `TrainingArguments` flags that the Trainer leaves to the script running it, as
transformers' example scripts do: `--do_train`/`--do_eval`/`--do_predict`, `--push_to_hub` (with `--hub_model_id`,
`--hub_private_repo`, `--hub_revision`) and the folder of `--report_to tensorboard`'s logs."""

from __future__ import annotations

from pathlib import Path

from transformers import HfArgumentParser, Trainer, TrainingArguments
from transformers.integrations import TensorBoardCallback
from transformers.integrations.integration_utils import default_logdir

from ...hub_card.push import check_token, push_to_hub

# `train` trains and scores the validation and test splits unless told otherwise.
SCRIPT_DEFAULTS = {"do_train": True, "do_eval": True, "do_predict": True}
SCRIPT_HELP = {
    "do_train": "Always true: `train` trains (`--do_train false` is refused; `multitask-bert evaluate` scores a saved "
    "model).",
    "do_eval": "Evaluate on the validation split during and after training; `--do_eval false` skips it (the "
    "out-of-scope threshold is still chosen on validation).",
    "do_predict": "Score the test split at the end; `--do_predict false` skips it.",
    "push_to_hub": "Publish the finished model folder with its model card at the end, as `multitask-bert push` does, "
    "to --hub_model_id (default: the output folder's name in your namespace); the token comes from HF_TOKEN or `hf "
    "auth login`. Checkpoints are not pushed.",
}
LOGGER_WITH_FILES = "tensorboard"


def scored_splits(parser: HfArgumentParser, argv: list[str]) -> tuple[str, ...]:
    """The splits `train` scores: validation unless `--do_eval false`, test unless `--do_predict false` (read from the
    command line: `TrainingArguments` turns `do_eval` back on when an eval strategy is set); `--do_train false` is
    refused."""
    given = parser.parse_known_args(argv)[0]
    if not given.do_train:
        raise ValueError("--do_train false: `train` always trains; score a saved model with `multitask-bert evaluate`.")
    return tuple(split for split, wanted in (("validation", given.do_eval), ("test", given.do_predict)) if wanted)


def take_over_hub_push(training_args: TrainingArguments, output_dir: Path) -> str | None:
    """The repo id `--push_to_hub true` publishes to at the end (None without it): `--hub_model_id`, else the output
    folder's name. The Trainer then pushes nothing itself, and a missing token fails now rather than after training."""
    if not training_args.push_to_hub:
        return None
    if training_args.hub_token is not None:
        raise ValueError(
            "--hub_token: the token comes from HF_TOKEN or `hf auth login` only (on the command line it would show in "
            "the process list and the shell history)."
        )
    check_token()
    training_args.push_to_hub = False
    return training_args.hub_model_id or output_dir.absolute().name


def push_trained_model(output_dir: Path, repo_id: str, training_args: TrainingArguments) -> None:
    """Publish the finished model folder to `repo_id` (with its TensorBoard logs when it has them)."""
    commit = push_to_hub(
        output_dir,
        repo_id,
        private=bool(training_args.hub_private_repo),
        revision=training_args.hub_revision,
        include_logs=LOGGER_WITH_FILES in training_args.report_to,
    )
    print(f"Pushed {output_dir} to {commit.repo_url} ({commit.commit_url})")


def keep_tensorboard_logs(trainer: Trainer, output_dir: Path) -> None:
    """Write TensorBoard logs to OUTPUT_DIR/runs/, where they stay (transformers would put them under the checkpoints
    folder, which goes at the end); TENSORBOARD_LOGGING_DIR still chooses another folder."""
    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, TensorBoardCallback) and callback.logging_dir is None:
            callback.logging_dir = str(output_dir / default_logdir())
