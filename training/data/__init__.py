"""Intent + entity data: readers for common formats, label vocabularies, tokenization with word-aligned tags, batching.

Every reader returns a `DatasetDict` with splits among `train`, `validation` and `test`, and the same features in
each split:

- `text` (`string`): the utterance as written in the source;
- `tokens` (`Sequence(string)`): its words;
- per sentence-level task, a `ClassLabel` column named after it (`intent`): `-1` when the example has no label;
- per token-level task, a `Sequence(ClassLabel)` column `<task>_tags` (`ner_tags`): one BIO tag per word, `[]` when
  the example has no annotation for it.

JointBERT and CoNLL data have the tasks `intent` and `ner`; JSONL and `datasets` data may have any number. The label
vocabularies come from the train split (or from `label_lists`, e.g. a trained model's labels). Tags are `"O"`, then
`B-`/`I-` for every entity type, then `"UNK"`; sentence labels are sorted, then `"UNK"`. Labels of other splits
that the vocabulary lacks become `"UNK"` (the metrics count a gold `UNK` as always wrong).

One job per module:

- `files`: split names, the files of each split, UTF-8 lines with line numbers in errors;
- `bio`: BIO validation and the repair of `I-` tags that open an entity;
- `words`: words of a text by the tokenizer's rule (shared with the pipeline; formats already split into words keep
  theirs), char spans to word BIO tags;
- `labels`: vocabularies with `UNK`, the features, encoding read examples into a `DatasetDict`;
- `jointbert`, `conll`, `jsonl`, `hf_dataset`: one reader per format (`jsonl` also reads labelled examples);
- `formats`: which reader a path needs (`load_data`), the embedded default data;
- `combine`: several loaded sets under one vocabulary;
- `tokenization`: model inputs and word-aligned targets;
- `collator`: batches.
"""

from ...modeling.modeling_multitask_bert import IGNORE_INDEX
from .collator import MultiTaskDataCollator
from .combine import combine_datasets
from .conll import load_conll
from .formats import default_data_dir, load_data, load_default_dataset
from .hf_dataset import load_hf_dataset
from .jointbert import load_jointbert
from .jsonl import load_jsonl, read_examples
from .labels import NO_LABEL, UNK, task_label_lists, task_levels
from .tokenization import tokenize_dataset
from .words import split_words

__all__ = [
    "IGNORE_INDEX",
    "NO_LABEL",
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
    "read_examples",
    "split_words",
    "task_label_lists",
    "task_levels",
    "tokenize_dataset",
]
