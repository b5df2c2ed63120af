"""Reader of the JointBERT layout (ATIS, SNIPS): `<dir>/{train,dev,test}/{seq.in,seq.out,label}`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from datasets import DatasetDict

from .bio import BioRepairs
from .files import SPLIT_NAMES, read_lines
from .labels import RawExample, build_dataset_dict


def load_jointbert(
    path: str | Path,
    label_lists: Mapping[str, list[str]] | None = None,
    out_of_scope: Mapping[str, str] | None = None,
) -> DatasetDict:
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
        lines = read_lines(seq_in)
        tag_lines = read_lines(folder / "seq.out") if any(present["seq.out"]) else None
        intents = read_lines(folder / "label") if any(present["label"]) else None
        for name, other in (("seq.out", tag_lines), ("label", intents)):
            if other is not None and len(other) != len(lines):
                raise ValueError(
                    f"{folder / name}, line {min(len(other), len(lines)) + 1}: has {len(other)} lines but "
                    f"{seq_in} has {len(lines)}."
                )
        repairs = BioRepairs(str(folder / "seq.out"))
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
            examples.append(RawExample(line, words, {"intent": intent}, {"ner": tags}, f"{seq_in}, line {index + 1}"))
        repairs.report()
        splits[split] = examples
    return build_dataset_dict(splits, label_lists, str(root), out_of_scope=out_of_scope)
