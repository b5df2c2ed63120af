"""Words of a text, by the tokenizer's own rule (`word_spans`, shared with the pipeline), and character spans of
entities turned into word-level BIO tags on those words."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from ...modeling import default_backbone_path
from ...modeling.pipeline_multitask_bert import word_spans
from .labels import UNK

Word = tuple[str, tuple[int, int]]


@cache
def default_tokenizer() -> PreTrainedTokenizerBase:
    """The packaged backbone's tokenizer: the words of data loaded without a tokenizer."""
    return AutoTokenizer.from_pretrained(default_backbone_path())


def split_words(text: str, tokenizer: PreTrainedTokenizerBase | None = None) -> list[Word]:
    """`(word, (start, end))` for each word of `text`, as `tokenizer` (default: the packaged backbone's) splits it."""
    tokenizer = tokenizer or default_tokenizer()
    if not tokenizer.is_fast:
        raise ValueError("Splitting text into words needs a fast tokenizer (it reads `word_ids()` and offsets).")
    return [(text[start:end], (start, end)) for start, end in word_spans(tokenizer, text)]


def char_spans_to_bio(text: str, words: list[Word], entities: list, where: str, expand: bool) -> tuple[list[str], int]:
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
