"""The tokenizer of a model folder, with an error that says when the folder has none."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoTokenizer, PreTrainedTokenizerBase

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
