"""Which reader a path needs (format sniffing), `load_data`, and the embedded default data."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from datasets import DatasetDict
from transformers import PreTrainedTokenizerBase

from .conll import CONLL_SUFFIXES, load_conll
from .files import SPLIT_NAMES, split_files
from .hf_dataset import load_hf_dataset
from .jointbert import load_jointbert
from .jsonl import JSONL_SUFFIXES, load_jsonl


def _detect_format(path: Path) -> str:
    if path.is_file():
        if path.suffix in JSONL_SUFFIXES:
            return "jsonl"
        if path.suffix in CONLL_SUFFIXES:
            return "conll"
        raise ValueError(f"Cannot tell the format of {path} from its suffix; pass format=...")
    if any((path / name / "seq.in").is_file() for name in SPLIT_NAMES):
        return "jointbert"
    if any((path / marker).is_file() for marker in ("dataset_dict.json", "state.json")):
        return "hf"
    names = {child.stem: child for child in path.iterdir() if child.is_file()}
    for suffixes, format_name in ((JSONL_SUFFIXES, "jsonl"), (CONLL_SUFFIXES, "conll")):
        if any(name in names and names[name].suffix in suffixes for name in SPLIT_NAMES):
            if format_name == "jsonl" and not _looks_like_span_jsonl(path, suffixes):
                return "hf"
            return format_name
    return "hf"


def _looks_like_span_jsonl(folder: Path, suffixes: tuple[str, ...]) -> bool:
    """Our JSONL has a `text` field; other JSON Lines (e.g. tokens + ner_tags) go through `datasets`."""
    path = next(iter(split_files(folder, suffixes).values()))
    with path.open(encoding="utf-8", errors="replace") as handle:
        first = next((line for line in handle if line.strip()), "{}")
    try:
        record = json.loads(first)
    except json.JSONDecodeError:
        return True  # let load_jsonl report the line
    return isinstance(record, dict) and "text" in record and "tokens" not in record


def load_data(
    path: str | Path, format: str | None = None, tokenizer: PreTrainedTokenizerBase | None = None, **kwargs
) -> DatasetDict:
    """
    Load `path` with the loader its format needs: `"jointbert"` (folders with seq.in), `"conll"`, `"jsonl"`
    (char spans) or `"hf"` (anything `datasets` loads: Hub ids, `save_to_disk` folders, JSON/CSV/Parquet). The
    format is detected from the path unless given. Formats that give a text, not words, split it with the model's
    `tokenizer` (default: the packaged backbone's); `kwargs` go to the loader.
    """
    loaders = {"jointbert": load_jointbert, "conll": load_conll, "jsonl": load_jsonl, "hf": load_hf_dataset}
    if format is None:
        format = _detect_format(Path(path)) if Path(path).exists() else "hf"
    if format not in loaders:
        raise ValueError(f"Unknown format {format!r}; choose one of {', '.join(loaders)}.")
    if "task_columns" in kwargs and format != "hf":
        raise ValueError(f"task_columns maps the columns of `datasets` data (format hf); {path} is {format} data.")
    if format in ("jsonl", "hf"):
        kwargs["tokenizer"] = tokenizer
    return loaders[format](path, **kwargs)


def default_data_dir() -> Path:
    """Folder of the embedded synthetic scheduler/assistant data (see its DATA_CARD.md)."""
    return Path(str(resources.files("multitask_bert.training") / "embedded_data"))


def load_default_dataset(tokenizer: PreTrainedTokenizerBase | None = None) -> DatasetDict:
    """The embedded synthetic scheduler/assistant dataset: 7 intents, 6 entity types, template-disjoint splits."""
    return load_jsonl(default_data_dir(), tokenizer)
