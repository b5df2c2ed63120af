"""Reader of CoNLL-style files: a word and its BIO tag per line, a blank line between sentences, the intent on a
`# intent = ...` comment line or in a side file."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from datasets import DatasetDict

from .bio import BioRepairs
from .files import read_lines, split_files, split_name
from .labels import RawExample, build_dataset_dict

CONLL_SUFFIXES = (".conll", ".conllu", ".iob", ".bio", ".tsv", ".txt")
METADATA_COMMENT = re.compile(r"^#\s*([A-Za-z_][\w.-]*)\s*=\s*(.*?)\s*$")


def _parse_conll(path: Path) -> list[RawExample]:
    repairs = BioRepairs(str(path))
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
            examples.append(RawExample(text, words, {"intent": metadata.get("intent") or None}, {"ner": tags}, where))
        elif metadata:
            raise ValueError(f"{path}, line {first_line}: empty utterance (comments but no words).")
        metadata, rows, first_line = {}, [], None

    for number, line in enumerate(read_lines(path), start=1):
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
    out_of_scope: Mapping[str, str] | None = None,
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
    files = split_files(path_or_dir, CONLL_SUFFIXES)
    if intent_files is not None and not isinstance(intent_files, Mapping):
        if len(files) != 1:
            raise ValueError("Give `intent_files` as a {split: path} mapping when loading several splits.")
        intent_files = {next(iter(files)): intent_files}
    intent_files = {split_name(split, "intent_files"): Path(path) for split, path in (intent_files or {}).items()}
    splits = {}
    for split, path in files.items():
        examples = _parse_conll(path)
        side_file = intent_files.get(split, path.with_suffix(".intent"))
        if split in intent_files or side_file.is_file():
            intents = [line.strip() for line in read_lines(side_file)]
            if len(intents) != len(examples):
                raise ValueError(f"{side_file} has {len(intents)} lines for {len(examples)} sentences in {path}.")
            for number, (example, intent) in enumerate(zip(examples, intents, strict=True), start=1):
                if not intent:
                    raise ValueError(f"{side_file}, line {number}: empty intent.")
                comment = example.labels["intent"]
                if comment not in (None, intent):
                    raise ValueError(
                        f"{side_file}, line {number}: intent {intent!r} contradicts '# intent = {comment}' "
                        f"at {example.where}."
                    )
                example.labels["intent"] = intent
        splits[split] = examples
    return build_dataset_dict(splits, label_lists, str(path_or_dir), out_of_scope=out_of_scope)
