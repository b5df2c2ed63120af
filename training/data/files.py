"""Where a reader looks: split names, the files of each split, and UTF-8 lines with line numbers in errors."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

SPLIT_NAMES = {"train": "train", "dev": "validation", "validation": "validation", "test": "test"}


def read_lines(path: Path) -> list[str]:
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


def split_name(name: str, where: str) -> str:
    """`train`, `validation` or `test` for a split's name (`dev` is `validation`)."""
    if name not in SPLIT_NAMES:
        raise ValueError(f"{where}: unknown split {name!r}; use one of {', '.join(SPLIT_NAMES)}.")
    return SPLIT_NAMES[name]


def split_files(path_or_dir: str | Path | Mapping[str, str | Path], suffixes: tuple[str, ...]) -> dict[str, Path]:
    """Split name -> file: from a mapping, a single file (the train split) or a folder of `<split><suffix>` files."""
    if isinstance(path_or_dir, Mapping):
        return {split_name(split, "data files"): Path(path) for split, path in path_or_dir.items()}
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
