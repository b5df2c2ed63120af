"""Where a model comes from (a local folder or a Hub id) and its tokenizer, with errors that say what is wrong."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from transformers import AutoTokenizer, PreTrainedConfig, PreTrainedTokenizerBase

from ..modeling import MultiTaskBertConfig

# What `save_pretrained` writes for the usual tokenizers (fast, WordPiece, BPE, SentencePiece).
TOKENIZER_FILES = (
    "tokenizer_config.json",
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
)


def check_model_location(name_or_path: str | Path) -> None:
    """Raise a `ValueError` at once if `name_or_path` is neither an existing path nor a valid Hub repo id (instead of
    asking the Hub, with retries, for a repo that cannot exist)."""
    if Path(name_or_path).exists():
        return
    try:
        validate_repo_id(str(name_or_path))
    except HFValidationError as error:
        raise ValueError(f"{name_or_path}: no such folder, and not a Hub repo id (namespace/name) either.") from error


def is_multitask_bert_model(name_or_path: str | Path) -> bool:
    """Whether `name_or_path` (checked with `check_model_location`) is a multitask-bert model rather than a plain
    encoder: its config's `model_type` (read without building the config); an `OSError` if it has no config."""
    check_model_location(name_or_path)
    config, _ = PreTrainedConfig.get_config_dict(str(name_or_path))
    if not config:
        raise OSError(f"{name_or_path} has no config.json: it is neither a multitask-bert model nor an encoder.")
    return config.get("model_type") == MultiTaskBertConfig.model_type


def load_tokenizer(name_or_path: str | Path) -> PreTrainedTokenizerBase:
    """
    `AutoTokenizer.from_pretrained(name_or_path)`, except that a local folder without any tokenizer file raises an
    `OSError` saying so (transformers would otherwise ask to run the model's remote code, then suggest installing
    sentencepiece).
    """
    path = Path(name_or_path)
    if path.is_dir() and not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise OSError(
            f"{path} has no tokenizer (none of {', '.join(TOKENIZER_FILES)}). Save the tokenizer the model was "
            f"trained with into it: `tokenizer.save_pretrained({str(path)!r})`."
        )
    return AutoTokenizer.from_pretrained(str(name_or_path))
