"""Intent + entity data: loaders for common formats, tokenization with word-aligned tags, and batching.

Every loader returns a `DatasetDict` with splits among `train`, `validation` and `test`, and the same features in
each split:

- `text` (`string`): the utterance as written in the source;
- `tokens` (`Sequence(string)`): its words;
- `intent` (`ClassLabel`): `-1` when the example has no intent;
- `ner_tags` (`Sequence(ClassLabel)`): one BIO tag per word, `[]` when the example has no entity annotation.

The label vocabularies come from the train split (or from `label_lists`, e.g. a trained model's labels). Entity tags
are `"O"`, then `B-`/`I-` for every entity type, then `"UNK"`; intents are sorted, then `"UNK"`. Labels of other splits
that the vocabulary lacks become `"UNK"` (the metrics count a gold `UNK` as always wrong).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import datasets
from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value
from tokenizers.pre_tokenizers import BertPreTokenizer
from transformers import DataCollatorForTokenClassification, PreTrainedTokenizerBase

from multitask_bert.modeling.modeling_multitask_bert import IGNORE_INDEX

from .embedding_preservation import TEACHER_EMBEDDING

logger = logging.getLogger(__name__)

UNK = "UNK"
NO_INTENT = -1
SPLIT_NAMES = {"train": "train", "dev": "validation", "validation": "validation", "test": "test"}
CONLL_SUFFIXES = (".conll", ".conllu", ".iob", ".bio", ".tsv", ".txt")
JSONL_SUFFIXES = (".jsonl", ".json")
METADATA_COMMENT = re.compile(r"^#\s*([A-Za-z_][\w.-]*)\s*=\s*(.*?)\s*$")


@dataclass
class RawExample:
    """One utterance before label encoding; `where` (e.g. `"train.conll, line 12"`) goes into error messages."""

    text: str
    tokens: list[str]
    intent: str | None
    ner_tags: list[str]
    where: str


class _BioRepairs:
    """Counts I- tags repaired to B- in one source, and logs one summary for it."""

    def __init__(self, source: str):
        self.source = source
        self.count = 0
        self.first_places: list[str] = []

    def check(self, tags: list[str], where: Callable[[int], str]) -> list[str]:
        """Validate BIO tags (`where(position)` names a tag's place); an `I-X` after `O` or another type -> `B-X`."""
        repaired = []
        previous_type = None
        for position, tag in enumerate(tags):
            if tag == "O":
                previous_type = None
            elif tag[:2] in ("B-", "I-") and len(tag) > 2:
                entity_type = tag[2:]
                if tag.startswith("I-") and entity_type != previous_type:
                    tag = "B-" + entity_type
                    self.count += 1
                    if len(self.first_places) < 3:
                        self.first_places.append(where(position))
                previous_type = entity_type
            else:
                raise ValueError(
                    f"{where(position)}: tag {tag!r} is not BIO; use 'O', 'B-<type>' or 'I-<type>' "
                    "(convert IOBES/IOB1 first)."
                )
            repaired.append(tag)
        return repaired

    def report(self) -> None:
        if self.count:
            logger.warning(
                "%s: repaired %d I- tags that followed O or another entity type to B- (first: %s).",
                self.source,
                self.count,
                "; ".join(self.first_places),
            )


def _read_lines(path: Path) -> list[str]:
    """Lines of a UTF-8 text file (no line ends, no final empty line); bad bytes raise with the line number."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ValueError(f"{path}, line {line}: not valid UTF-8 ({error.reason}); re-encode the file.") from None
    lines = text.removeprefix("\ufeff").split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def _split_name(name: str, where: str) -> str:
    if name not in SPLIT_NAMES:
        raise ValueError(f"{where}: unknown split {name!r}; use one of {', '.join(SPLIT_NAMES)}.")
    return SPLIT_NAMES[name]


def _split_files(path_or_dir: str | Path | Mapping[str, str | Path], suffixes: tuple[str, ...]) -> dict[str, Path]:
    """Split name -> file: from a mapping, a single file (the train split) or a folder of `<split><suffix>` files."""
    if isinstance(path_or_dir, Mapping):
        return {_split_name(split, "data files"): Path(path) for split, path in path_or_dir.items()}
    path = Path(path_or_dir)
    if path.is_file():
        return {"train": path}
    if not path.is_dir():
        raise ValueError(f"{path} does not exist.")
    files: dict[str, Path] = {}
    for name, split in SPLIT_NAMES.items():
        for suffix in suffixes:
            candidate = path / f"{name}{suffix}"
            if candidate.is_file():
                if split in files:
                    raise ValueError(
                        f"{path} has two files for the {split} split: {files[split].name}, {candidate.name}."
                    )
                files[split] = candidate
    if not files:
        names = ", ".join(f"{name}{suffixes[0]}" for name in ("train", "validation", "test"))
        raise ValueError(f"{path} has no split files; expected some of {names} (suffixes: {', '.join(suffixes)}).")
    return files


# --- label vocabularies and datasets.Features -------------------------------------------------------------------------


def _features(intent_names: list[str], ner_names: list[str]) -> Features:
    return Features(
        {
            "text": Value("string"),
            "tokens": Sequence(Value("string")),
            "intent": ClassLabel(names=intent_names),
            "ner_tags": Sequence(ClassLabel(names=ner_names)),
        }
    )


def _label_lists_from_train(train: list[RawExample]) -> dict[str, list[str]]:
    intents = sorted({example.intent for example in train if example.intent is not None})
    entity_types = sorted({tag[2:] for example in train for tag in example.ner_tags if tag != "O"})
    ner = ["O"] + [f"{prefix}-{entity_type}" for entity_type in entity_types for prefix in "BI"]
    return {"intent": intents + [UNK], "ner": ner + [UNK]}


def _checked_label_lists(label_lists: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """Given vocabularies (e.g. a model's); `UNK` is appended where missing, NER must start with `O`."""
    intent = list(label_lists.get("intent", []))
    ner = list(label_lists.get("ner", ["O"]))
    if not ner or ner[0] != "O":
        raise ValueError(f"The NER label list must start with 'O'; got {ner[:3]}...")
    return {"intent": intent + [UNK] * (UNK not in intent), "ner": ner + [UNK] * (UNK not in ner)}


def _build_dataset_dict(
    splits: Mapping[str, list[RawExample]], label_lists: Mapping[str, list[str]] | None, source: str
) -> DatasetDict:
    """Encode raw examples with one vocabulary (from train, or `label_lists`); unseen labels become `UNK`."""
    if label_lists is None:
        if "train" not in splits:
            raise ValueError(f"{source}: no train split to take the label vocabulary from; pass `label_lists`.")
        label_lists = _label_lists_from_train(splits["train"])
    else:
        label_lists = _checked_label_lists(label_lists)
    intent_ids = {name: index for index, name in enumerate(label_lists["intent"])}
    ner_ids = {name: index for index, name in enumerate(label_lists["ner"])}
    features = _features(label_lists["intent"], label_lists["ner"])
    result = {}
    for split in ("train", "validation", "test"):
        if split not in splits:
            continue
        unseen: set[str] = set()
        columns: dict[str, list] = {"text": [], "tokens": [], "intent": [], "ner_tags": []}
        for example in splits[split]:
            if example.intent is None:
                intent = NO_INTENT
            else:
                intent = intent_ids.get(example.intent, intent_ids[UNK])
                if example.intent not in intent_ids:
                    unseen.add(f"intent {example.intent}")
            tags = [ner_ids.get(tag, ner_ids[UNK]) for tag in example.ner_tags]
            unseen.update(f"tag {tag}" for tag in example.ner_tags if tag not in ner_ids)
            columns["text"].append(example.text)
            columns["tokens"].append(example.tokens)
            columns["intent"].append(intent)
            columns["ner_tags"].append(tags)
        if unseen:
            logger.warning(
                "%s, %s split: %d labels are not in the vocabulary and map to UNK: %s.",
                source,
                split,
                len(unseen),
                ", ".join(sorted(unseen)),
            )
        result[split] = Dataset.from_dict(columns, features=features)
    return DatasetDict(result)


# --- JointBERT: <dir>/{train,dev,test}/{seq.in,seq.out,label} ---------------------------------------------------------


def load_jointbert(path: str | Path, label_lists: Mapping[str, list[str]] | None = None) -> DatasetDict:
    """
    Load the JointBERT layout (ATIS, SNIPS): `<path>/{train,dev,test}/` with `seq.in` (words), `seq.out` (BIO tags)
    and `label` (intents), one utterance per line. `dev` becomes `validation`. A dataset without intents may leave out
    every `label` file, one without entities every `seq.out` file.
    """
    root = Path(path)
    split_dirs: dict[str, Path] = {}
    for name, split in SPLIT_NAMES.items():
        if (root / name / "seq.in").is_file():
            if split in split_dirs:
                raise ValueError(f"{root} has two folders for the {split} split: {split_dirs[split].name}/, {name}/.")
            split_dirs[split] = root / name
    if not split_dirs:
        raise ValueError(f"{root} has no train/, dev/ or test/ folder with a seq.in file (JointBERT layout).")
    present = {name: [(folder / name).is_file() for folder in split_dirs.values()] for name in ("seq.out", "label")}
    for name, found in present.items():
        if any(found) and not all(found):
            missing = [str(folder / name) for folder, ok in zip(split_dirs.values(), found, strict=True) if not ok]
            raise ValueError(f"Missing split file(s): {', '.join(missing)} (other splits have {name}).")
    if not any(present["seq.out"]) and not any(present["label"]):
        raise ValueError(f"{root}: the splits have neither seq.out (tags) nor label (intents) files.")

    splits = {}
    for split, folder in split_dirs.items():
        seq_in = folder / "seq.in"
        lines = _read_lines(seq_in)
        tag_lines = _read_lines(folder / "seq.out") if any(present["seq.out"]) else None
        intents = _read_lines(folder / "label") if any(present["label"]) else None
        for name, other in (("seq.out", tag_lines), ("label", intents)):
            if other is not None and len(other) != len(lines):
                raise ValueError(
                    f"{folder / name}, line {min(len(other), len(lines)) + 1}: has {len(other)} lines but "
                    f"{seq_in} has {len(lines)}."
                )
        repairs = _BioRepairs(str(folder / "seq.out"))
        examples = []
        for index, line in enumerate(lines):
            words = line.split()
            if not words:
                raise ValueError(f"{seq_in}, line {index + 1}: empty utterance.")
            tags: list[str] = []
            if tag_lines is not None:
                tags = tag_lines[index].split()
                where = f"{folder / 'seq.out'}, line {index + 1}"
                if len(tags) != len(words):
                    raise ValueError(f"{where}: {len(tags)} tags for {len(words)} words in seq.in.")
                tags = repairs.check(tags, lambda position, where=where: f"{where}, word {position + 1}")
            intent = None
            if intents is not None:
                intent = intents[index].strip()
                if not intent:
                    raise ValueError(f"{folder / 'label'}, line {index + 1}: empty intent.")
            examples.append(RawExample(line, words, intent, tags, f"{seq_in}, line {index + 1}"))
        repairs.report()
        splits[split] = examples
    return _build_dataset_dict(splits, label_lists, str(root))


# --- CoNLL: "word ... tag" per line, blank line between sentences -----------------------------------------------------


def _parse_conll(path: Path) -> list[RawExample]:
    repairs = _BioRepairs(str(path))
    examples: list[RawExample] = []
    metadata: dict[str, str] = {}
    rows: list[tuple[int, list[str]]] = []  # (line number, columns)
    first_line = None

    def finish() -> None:
        nonlocal metadata, rows, first_line
        if rows:
            words = [columns[0] for _, columns in rows]
            tagged = [len(columns) > 1 for _, columns in rows]
            if any(tagged) and not all(tagged):
                number = rows[tagged.index(not tagged[0])][0]
                raise ValueError(
                    f"{path}, line {number}: tag count differs from word count in this sentence (some lines have "
                    "a tag column, some do not)."
                )
            tags = [columns[-1] for _, columns in rows] if all(tagged) else []
            where = f"{path}, line {rows[0][0]}"
            tags = repairs.check(tags, lambda position: f"{path}, line {rows[position][0]}")
            text = metadata.get("text") or " ".join(words)
            examples.append(RawExample(text, words, metadata.get("intent") or None, tags, where))
        elif metadata:
            raise ValueError(f"{path}, line {first_line}: empty utterance (comments but no words).")
        metadata, rows, first_line = {}, [], None

    for number, line in enumerate(_read_lines(path), start=1):
        columns = line.split()
        if not columns:
            finish()
            continue
        if columns[0] == "-DOCSTART-":
            continue
        comment = METADATA_COMMENT.match(line) if not rows else None
        if comment:
            metadata[comment.group(1)] = comment.group(2)
            first_line = first_line or number
            continue
        rows.append((number, columns))
    finish()
    repairs.report()
    return examples


def load_conll(
    path_or_dir: str | Path | Mapping[str, str | Path],
    intent_files: str | Path | Mapping[str, str | Path] | None = None,
    label_lists: Mapping[str, list[str]] | None = None,
) -> DatasetDict:
    """
    Load CoNLL-style files: one word per line with its BIO tag in the last column (first column: the word; lines
    with only a word mean the sentence has no entity annotation), a blank line between sentences, `-DOCSTART-`
    lines skipped. Comment lines `# key = value` before a sentence set its metadata: `# intent = set_alarm`,
    `# text = ...` (the original text; default: the words joined by spaces).

    `path_or_dir` is a folder of `{train,validation|dev,test}{.conll,.conllu,.iob,.bio,.tsv,.txt}` files, one file
    (the train split) or a `{split: file}` mapping. Intents may instead come from a side file with one intent per
    sentence: `intent_files` (a path for a single file, else `{split: path}`), found automatically as `<name>.intent`
    next to each data file.
    """
    files = _split_files(path_or_dir, CONLL_SUFFIXES)
    if intent_files is not None and not isinstance(intent_files, Mapping):
        if len(files) != 1:
            raise ValueError("Give `intent_files` as a {split: path} mapping when loading several splits.")
        intent_files = {next(iter(files)): intent_files}
    intent_files = {_split_name(split, "intent_files"): Path(path) for split, path in (intent_files or {}).items()}
    splits = {}
    for split, path in files.items():
        examples = _parse_conll(path)
        side_file = intent_files.get(split, path.with_suffix(".intent"))
        if split in intent_files or side_file.is_file():
            intents = [line.strip() for line in _read_lines(side_file)]
            if len(intents) != len(examples):
                raise ValueError(f"{side_file} has {len(intents)} lines for {len(examples)} sentences in {path}.")
            for number, (example, intent) in enumerate(zip(examples, intents, strict=True), start=1):
                if not intent:
                    raise ValueError(f"{side_file}, line {number}: empty intent.")
                if example.intent is not None and example.intent != intent:
                    raise ValueError(
                        f"{side_file}, line {number}: intent {intent!r} contradicts '# intent = {example.intent}' "
                        f"at {example.where}."
                    )
                example.intent = intent
        splits[split] = examples
    return _build_dataset_dict(splits, label_lists, str(path_or_dir))


# --- JSONL: {"text", "intent", "entities": [{"start", "end", "label"}]} -----------------------------------------------


def _char_spans_to_bio(
    text: str, words: list[tuple[str, tuple[int, int]]], entities: list, where: str, expand: bool
) -> tuple[list[str], int]:
    """Word-level BIO tags from character spans; returns the tags and how many spans were widened to whole words."""
    tags = ["O"] * len(words)
    widened = 0
    for entity in entities:
        if not isinstance(entity, Mapping) or not {"start", "end", "label"} <= entity.keys():
            raise ValueError(f"{where}: each entity needs 'start', 'end' and 'label'; got {entity!r}.")
        start, end, label = entity["start"], entity["end"], entity["label"]
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
            raise ValueError(f"{where}: entity span [{start}, {end}) is not inside the text ({len(text)} chars).")
        if not isinstance(label, str) or not label or label == UNK or any(char.isspace() for char in label):
            raise ValueError(f"{where}: entity label {label!r} must be a non-empty string without spaces.")
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        covered = [
            index for index, (_, (word_start, word_end)) in enumerate(words) if word_start < end and word_end > start
        ]
        if not covered:
            raise ValueError(f"{where}: entity {label} [{start}, {end}) covers no word.")
        first, last = covered[0], covered[-1]
        if words[first][1][0] != start or words[last][1][1] != end:
            if not expand:
                raise ValueError(
                    f"{where}: entity {label} {text[start:end]!r} [{start}, {end}) starts or ends inside a word "
                    f"(words: {[words[index][0] for index in covered]}); fix the span, or pass alignment='expand' to "
                    "widen it to whole words."
                )
            widened += 1
        if any(tags[index] != "O" for index in covered):
            raise ValueError(f"{where}: entity {label} {text[start:end]!r} overlaps another entity.")
        tags[first] = f"B-{label}"
        for index in covered[1:]:
            tags[index] = f"I-{label}"
    return tags, widened


def _parse_jsonl(path: Path, pre_tokenizer: Any, expand: bool) -> list[RawExample]:
    examples = []
    widened = 0
    for number, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{where}: invalid JSON ({error.msg}).") from None
        if not isinstance(record, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}.")
        text = record.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{where}: empty utterance (missing or empty 'text').")
        intent = record.get("intent")
        if intent is not None and (not isinstance(intent, str) or not intent.strip()):
            raise ValueError(f"{where}: 'intent' must be a non-empty string or null; got {intent!r}.")
        words = pre_tokenizer.pre_tokenize_str(text)
        tags: list[str] = []
        entities = record.get("entities")
        if entities is not None:
            if not isinstance(entities, list):
                raise ValueError(f"{where}: 'entities' must be a list or null.")
            tags, count = _char_spans_to_bio(text, words, entities, where, expand)
            widened += count
        examples.append(RawExample(text, [word for word, _ in words], intent and intent.strip(), tags, where))
    if widened:
        logger.warning("%s: widened %d entity spans that cut through words to whole words.", path, widened)
    return examples


def load_jsonl(
    path_or_dir: str | Path | Mapping[str, str | Path],
    pre_tokenizer: Any = None,
    alignment: str = "strict",
    label_lists: Mapping[str, list[str]] | None = None,
) -> DatasetDict:
    """
    Load JSON Lines with character-span entities: `{"text": ..., "intent": ..., "entities": [{"start", "end",
    "label"}]}` (`end` exclusive). A missing/null `intent` means no intent, a missing/null `entities` no entity
    annotation (an empty list: annotated, no entities).

    Words come from a `tokenizers` pre-tokenizer (default `BertPreTokenizer`: whitespace and punctuation), and each
    span becomes B-/I- tags on the words it covers. A span that starts or ends inside a word raises a `ValueError`
    with `alignment="strict"` (default); `alignment="expand"` widens it to whole words, with a warning.

    `path_or_dir` is a folder of `train.jsonl`, `validation.jsonl` (or `dev.jsonl`), `test.jsonl`, one file (the
    train split) or a `{split: file}` mapping.
    """
    if alignment not in ("strict", "expand"):
        raise ValueError(f"alignment must be 'strict' or 'expand', got {alignment!r}.")
    pre_tokenizer = pre_tokenizer or BertPreTokenizer()
    files = _split_files(path_or_dir, JSONL_SUFFIXES)
    splits = {split: _parse_jsonl(path, pre_tokenizer, alignment == "expand") for split, path in files.items()}
    return _build_dataset_dict(splits, label_lists, str(path_or_dir))


# --- any `datasets` dataset -------------------------------------------------------------------------------------------


def _names_of(feature: Any) -> ClassLabel | None:
    return feature if isinstance(feature, ClassLabel) else None


def load_hf_dataset(
    name_or_path: str | Path | DatasetDict | Dataset,
    tokens_column: str | None = None,
    text_column: str | None = None,
    intent_column: str | None = None,
    ner_column: str | None = None,
    label_lists: Mapping[str, list[str]] | None = None,
    **load_kwargs,
) -> DatasetDict:
    """
    Bring any `datasets` dataset (a Hub id, a local folder or files via `load_dataset`, a `save_to_disk` folder, or a
    `Dataset`/`DatasetDict` object) into this layout. Intent and tag columns may be `ClassLabel`s or strings; tags
    must be BIO. Without any column names, the columns `tokens`, `text`, `intent` and `ner_tags` are used where
    present. Without `tokens_column`, words come from splitting `text_column` (`BertPreTokenizer`); `ner_column`
    needs `tokens_column`. `load_kwargs` go to `datasets.load_dataset` (e.g. `data_files`, `revision`).
    """
    if isinstance(name_or_path, (Dataset, DatasetDict)):
        loaded = name_or_path
    elif Path(name_or_path).is_dir() and any(
        (Path(name_or_path) / marker).is_file() for marker in ("dataset_dict.json", "state.json")
    ):
        loaded = datasets.load_from_disk(str(name_or_path))
    else:
        loaded = datasets.load_dataset(str(name_or_path), **load_kwargs)
    if isinstance(loaded, Dataset):
        loaded = DatasetDict({load_kwargs.get("split", "train"): loaded})
    source = str(name_or_path) if not isinstance(name_or_path, (Dataset, DatasetDict)) else "dataset"

    columns = {"tokens": tokens_column, "text": text_column, "intent": intent_column, "ner": ner_column}
    available = next(iter(loaded.values())).column_names
    if not any(columns.values()):
        defaults = {"tokens": "tokens", "text": "text", "intent": "intent", "ner": "ner_tags"}
        columns = {role: name if name in available else None for role, name in defaults.items()}
        if not (columns["tokens"] or columns["text"]):
            raise ValueError(f"{source}: name the columns to use (tokens_column=... etc.); columns: {available}.")
    if not (columns["tokens"] or columns["text"]):
        raise ValueError(f"{source}: give `tokens_column` or `text_column`.")
    if columns["ner"] and not columns["tokens"]:
        raise ValueError(f"{source}: `ner_column` holds one tag per word, so it needs `tokens_column` too.")

    pre_tokenizer = BertPreTokenizer()
    splits = {}
    for split_name, dataset in loaded.items():
        if split_name not in SPLIT_NAMES:
            logger.warning("%s: ignoring split %r (not train, validation/dev or test).", source, split_name)
            continue
        missing = [name for name in columns.values() if name and name not in dataset.column_names]
        if missing:
            raise ValueError(f"{source}, {split_name} split: no column {missing}; columns: {dataset.column_names}.")
        intent_names = _names_of(dataset.features[columns["intent"]]) if columns["intent"] else None
        ner_feature = dataset.features[columns["ner"]] if columns["ner"] else None
        ner_names = _names_of(getattr(ner_feature, "feature", None))
        repairs = _BioRepairs(f"{source}, {split_name} split")
        examples = []
        for row_index, row in enumerate(dataset.select_columns([name for name in columns.values() if name])):
            where = f"{source}, {split_name} split, row {row_index}"
            text = row[columns["text"]] if columns["text"] else None
            tokens = list(row[columns["tokens"]]) if columns["tokens"] else None
            if tokens is None:
                tokens = [word for word, _ in pre_tokenizer.pre_tokenize_str(text or "")]
            if not tokens:
                raise ValueError(f"{where}: empty utterance.")
            text = text if text is not None else " ".join(tokens)
            intent = row[columns["intent"]] if columns["intent"] else None
            if intent is not None and intent_names is not None:
                intent = intent_names.int2str(intent) if intent >= 0 else None
            tags = list(row[columns["ner"]] or []) if columns["ner"] else []
            if ner_names is not None:
                tags = [ner_names.int2str(tag) for tag in tags]
            if tags and len(tags) != len(tokens):
                raise ValueError(f"{where}: {len(tags)} tags for {len(tokens)} words.")
            tags = repairs.check(
                [str(tag) for tag in tags], lambda position, where=where: f"{where}, word {position + 1}"
            )
            examples.append(RawExample(text, tokens, None if intent is None else str(intent), tags, where))
        repairs.report()
        splits[SPLIT_NAMES[split_name]] = examples
    return _build_dataset_dict(splits, label_lists, source)


# --- format detection, the embedded default data, combining sets ------------------------------------------------------


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
    path = next(iter(_split_files(folder, suffixes).values()))
    with path.open(encoding="utf-8", errors="replace") as handle:
        first = next((line for line in handle if line.strip()), "{}")
    try:
        record = json.loads(first)
    except json.JSONDecodeError:
        return True  # let load_jsonl report the line
    return isinstance(record, dict) and "text" in record and "tokens" not in record


def load_data(path: str | Path, format: str | None = None, **kwargs) -> DatasetDict:
    """
    Load `path` with the loader its format needs: `"jointbert"` (folders with seq.in), `"conll"`, `"jsonl"`
    (char spans) or `"hf"` (anything `datasets` loads: Hub ids, `save_to_disk` folders, JSON/CSV/Parquet). The
    format is detected from the path unless given; `kwargs` go to the loader.
    """
    loaders = {"jointbert": load_jointbert, "conll": load_conll, "jsonl": load_jsonl, "hf": load_hf_dataset}
    if format is None:
        format = _detect_format(Path(path)) if Path(path).exists() else "hf"
    if format not in loaders:
        raise ValueError(f"Unknown format {format!r}; choose one of {', '.join(loaders)}.")
    return loaders[format](path, **kwargs)


def default_data_dir() -> Path:
    """Folder of the embedded synthetic scheduler/assistant data (see its DATA_CARD.md)."""
    return Path(str(resources.files("multitask_bert.training") / "data"))


def load_default_dataset() -> DatasetDict:
    """The embedded synthetic scheduler/assistant dataset: 7 intents, 6 entity types, template-disjoint splits."""
    return load_jsonl(default_data_dir())


def task_label_lists(dataset_dict: DatasetDict) -> dict[str, list[str]]:
    """
    `{"intent": [...], "ner": [...]}` from the features (shared by all splits), in id order with `UNK` last. A task
    without any annotation in the train split (without one: the first split) is left out.
    """
    reference = dataset_dict["train"] if "train" in dataset_dict else next(iter(dataset_dict.values()))
    features = reference.features
    label_lists = {}
    if any(intent != NO_INTENT for intent in reference["intent"]):
        label_lists["intent"] = list(features["intent"].names)
    if any(len(tags) for tags in reference["ner_tags"]):
        label_lists["ner"] = list(features["ner_tags"].feature.names)
    return label_lists


def _ordered_union(label_lists: Iterable[list[str]], ner: bool) -> list[str]:
    names = {name for names in label_lists for name in names if name not in (UNK, "O")}
    if not ner:
        return sorted(names) + [UNK]
    entity_types = sorted({name[2:] for name in names})
    return ["O"] + [f"{prefix}-{entity_type}" for entity_type in entity_types for prefix in "BI"] + [UNK]


def combine_datasets(*dataset_dicts: DatasetDict) -> DatasetDict:
    """
    Concatenate loaded sets split by split under one vocabulary (the union of theirs), e.g. an intent-only set and
    an NER-only set to train one model on both. Ids are remapped by name; `UNK` stays `UNK`.
    """
    if not dataset_dicts:
        raise ValueError("Give at least one DatasetDict.")
    feature_sets = [next(iter(dataset_dict.values())).features for dataset_dict in dataset_dicts]
    intent_names = _ordered_union((features["intent"].names for features in feature_sets), ner=False)
    ner_names = _ordered_union((features["ner_tags"].feature.names for features in feature_sets), ner=True)
    features = _features(intent_names, ner_names)
    intent_ids = {name: index for index, name in enumerate(intent_names)}
    ner_ids = {name: index for index, name in enumerate(ner_names)}

    remapped: dict[str, list[Dataset]] = {}
    for dataset_dict, old in zip(dataset_dicts, feature_sets, strict=True):
        intent_map = [intent_ids[name] for name in old["intent"].names]
        ner_map = [ner_ids[name] for name in old["ner_tags"].feature.names]

        def remap(batch, intent_map=intent_map, ner_map=ner_map):
            return {
                "intent": [intent_map[intent] if intent != NO_INTENT else NO_INTENT for intent in batch["intent"]],
                "ner_tags": [[ner_map[tag] for tag in tags] for tags in batch["ner_tags"]],
            }

        for split, dataset in dataset_dict.items():
            dataset = dataset.select_columns(list(features)).map(remap, batched=True, features=features)
            remapped.setdefault(split, []).append(dataset)
    return DatasetDict({split: datasets.concatenate_datasets(parts) for split, parts in remapped.items()})


# --- tokenization and batching ----------------------------------------------------------------------------------------


def _continuation_ids(ner_names: list[str]) -> list[int]:
    """For each tag id, the id its word's later sub-tokens get: I-X for B-X, itself otherwise."""
    ids = {name: index for index, name in enumerate(ner_names)}
    continuation = []
    for name in ner_names:
        if name.startswith("B-"):
            if "I-" + name[2:] not in ids:
                raise ValueError(f"label_all_subtokens needs I-{name[2:]} in the NER labels, which only have {name}.")
            continuation.append(ids["I-" + name[2:]])
        else:
            continuation.append(ids[name])
    return continuation


def tokenize_dataset(
    dataset_dict: DatasetDict,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int | None = None,
    label_all_subtokens: bool = False,
) -> DatasetDict:
    """
    Add model inputs and targets to every split: `input_ids`, `attention_mask` (and `token_type_ids` if the tokenizer
    makes them), `intent_labels` (`-100` without an intent), `ner_labels` (one per token: the word's tag on its first
    sub-token, `-100` on later sub-tokens, special tokens, and everywhere when the example has no tags) and `length`
    (for `group_by_length`). With `label_all_subtokens=True` later sub-tokens get the word's tag too (`I-X` after
    `B-X`). Words cut by truncation (`max_length`, default the tokenizer's) are counted in a warning.

    A task that `task_label_lists` leaves out (no annotation in train) gets no `<task>_labels` column, so a model
    built from `task_label_lists` (without that head) accepts every batch.
    """
    if not tokenizer.is_fast:
        raise ValueError("tokenize_dataset needs a fast tokenizer (it aligns tags through `word_ids()`).")
    effective_max = max_length or tokenizer.model_max_length
    tasks = task_label_lists(dataset_dict)
    helper_columns = ["truncated_words", "untokenizable_words"]

    def encode(batch: dict[str, list], continuation: list[int]) -> dict[str, list]:
        encoding = tokenizer(batch["tokens"], is_split_into_words=True, truncation=True, max_length=max_length)
        ner_labels, truncated, untokenizable = [], [], []
        for index, (tokens, tags) in enumerate(zip(batch["tokens"], batch["ner_tags"], strict=True)):
            word_ids = encoding.word_ids(index)
            labels = []
            previous = None
            for word_id in word_ids:
                if word_id is None or not tags:
                    labels.append(IGNORE_INDEX)
                elif word_id != previous:
                    labels.append(tags[word_id])
                else:
                    labels.append(continuation[tags[word_id]] if label_all_subtokens else IGNORE_INDEX)
                previous = word_id
            ner_labels.append(labels)
            seen = {word_id for word_id in word_ids if word_id is not None}
            cut = len(tokens) - 1 - max(seen, default=-1) if len(word_ids) >= effective_max else 0
            truncated.append(cut)
            untokenizable.append(len(tokens) - len(seen) - cut)
        columns = {**encoding, "length": [len(input_ids) for input_ids in encoding["input_ids"]]}
        if "intent" in tasks:
            columns["intent_labels"] = [intent if intent != NO_INTENT else IGNORE_INDEX for intent in batch["intent"]]
        if "ner" in tasks:
            columns["ner_labels"] = ner_labels
        return {**columns, helper_columns[0]: truncated, helper_columns[1]: untokenizable}

    result = {}
    for split, dataset in dataset_dict.items():
        continuation = _continuation_ids(dataset.features["ner_tags"].feature.names) if label_all_subtokens else []
        encoded = dataset.map(
            encode, batched=True, fn_kwargs={"continuation": continuation}, desc=f"Tokenizing {split}"
        )
        cut = encoded["truncated_words"]
        if any(cut):
            logger.warning(
                "%s split: truncation to %d tokens cut %d words from %d examples; their tags are neither trained "
                "nor evaluated. Raise max_length to keep them.",
                split,
                effective_max,
                sum(cut),
                sum(count > 0 for count in cut),
            )
        lost = sum(encoded["untokenizable_words"])
        if lost:
            logger.warning(
                "%s split: %d words give no tokens with this tokenizer; their tags are dropped.", split, lost
            )
        result[split] = encoded.remove_columns(helper_columns)
    return DatasetDict(result)


@dataclass
class MultiTaskDataCollator(DataCollatorForTokenClassification):
    """
    Pads model inputs with the tokenizer and every token-level `<task>_labels` list (e.g. `ner_labels`) with
    `label_pad_token_id` (-100) on the tokenizer's padding side; sentence-level `<task>_labels` become a tensor.
    A `teacher_embedding` column (embedding preservation) becomes a float tensor. Other columns (`text`, `tokens`,
    `length`...) are dropped, so it also works with `remove_unused_columns=False`.
    """

    def __post_init__(self):
        if self.return_tensors != "pt":
            raise ValueError("MultiTaskDataCollator returns PyTorch tensors only (return_tensors='pt').")

    def torch_call(self, features: list[Mapping[str, Any]]) -> dict[str, Any]:
        import torch

        keep = set(self.tokenizer.model_input_names)
        teacher = [feature[TEACHER_EMBEDDING] for feature in features] if TEACHER_EMBEDDING in features[0] else None
        features = [
            {key: value for key, value in feature.items() if key in keep or key.endswith("_labels")}
            for feature in features
        ]
        token_tasks = [key for key, value in features[0].items() if key.endswith("_labels") and _is_sequence(value)]
        token_labels = {key: [list(feature.pop(key)) for feature in features] for key in token_tasks}
        batch = super().torch_call(features)
        length = batch["input_ids"].shape[1]
        for key, rows in token_labels.items():
            padding = [[self.label_pad_token_id] * (length - len(row)) for row in rows]
            if self.tokenizer.padding_side == "right":
                padded = [row + pad for row, pad in zip(rows, padding, strict=True)]
            else:
                padded = [pad + row for row, pad in zip(rows, padding, strict=True)]
            batch[key] = torch.tensor(padded, dtype=torch.long)
        if teacher is not None:
            batch[TEACHER_EMBEDDING] = torch.tensor(teacher, dtype=torch.float32)
        return batch


def _is_sequence(value: Any) -> bool:
    return isinstance(value, (list, tuple)) or getattr(value, "ndim", 0) > 0


__all__ = [
    "IGNORE_INDEX",
    "NO_INTENT",
    "UNK",
    "MultiTaskDataCollator",
    "combine_datasets",
    "default_data_dir",
    "load_conll",
    "load_data",
    "load_default_dataset",
    "load_hf_dataset",
    "load_jointbert",
    "load_jsonl",
    "task_label_lists",
    "tokenize_dataset",
]
