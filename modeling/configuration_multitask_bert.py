"""Configuration of MultiTaskBert: a shared encoder, pooling and named task heads.

This file travels with saved models (Hub remote code): it imports only transformers and the standard library.
"""

from __future__ import annotations

import json
from pathlib import Path

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

POOLING_MODES = ("mean", "cls", "max")
# Sentence-level heads may pool token states their own way; "attention" learns which tokens to weigh.
HEAD_POOLING_MODES = (*POOLING_MODES, "attention")
# How token-level heads see a word split into sub-tokens: each sub-token's own state (the word's tag is decided at its
# first sub-token), or the mean of the word's sub-token states at every one of them.
SUBWORD_POOLING_MODES = ("first", "mean")
TASK_LEVELS = ("sentence", "token")
# Out-of-scope scores of a sentence-level head (higher: further out of scope): maximum softmax probability, energy
# (logsumexp of the logits), Mahalanobis distance of the head's input to the nearest class mean (shared covariance),
# cosine distance of the sentence embedding to the nearest stored train embedding.
# Each method's score range: a threshold must lie in it.
OUT_OF_SCOPE_SCORE_RANGES = {
    "msp": (0.0, 1.0),
    "energy": (float("-inf"), float("inf")),
    "mahalanobis": (0.0, float("inf")),
    "knn": (0.0, 2.0),
}
OUT_OF_SCOPE_METHODS = tuple(OUT_OF_SCOPE_SCORE_RANGES)
# Methods that keep fitted vectors in the weights (class means, train embeddings): their count is `size`.
OUT_OF_SCOPE_METHODS_WITH_VECTORS = ("mahalanobis", "knn")
# How a sentence-level task's stored examples are compared with an input (`MultiTaskBertModel.add_examples`).
EXAMPLE_METRICS = ("mahalanobis", "cosine")
# How much of the error that a mean of `n` examples adds to a Mahalanobis distance (`hidden_size / n`) is taken off
# a prototype's distances (`ExampleMemory`): chosen on CLINC150's validation split by benchmarks/grow.py.
DEFAULT_EXAMPLE_ERROR_SCALE = 3.0
# The scale of examples saved before the scale was stored in the config (they keep their answers).
LEGACY_EXAMPLE_ERROR_SCALE = 1.0
DEFAULT_TASKS = {
    "intent": {"level": "sentence", "labels": ["LABEL_0", "LABEL_1"]},
    "ner": {"level": "token", "labels": ["O"]},
}
# The default heads' names, which `MultiTaskBertModel.from_backbone(intent_labels=, ner_labels=)` and the data
# readers of intent + entity formats use.
DEFAULT_SENTENCE_TASK, DEFAULT_TOKEN_TASK = DEFAULT_TASKS
# How a task is named outside the model, where a task spec does not say (`result_key`, `metric_prefix`): its own name,
# except for the default entity task, whose results are `entities` and whose scores are `entity_f1` etc.
DEFAULT_TASK_NAMING = {"ner": {"result_key": "entities", "metric_prefix": "entity"}}
# Spec keys that only name a task in results and scores.
TASK_NAMING_KEYS = ("result_key", "metric_prefix")
# What `SentenceTransformer(folder, trust_remote_code=True)` reads: one Transformer module in the folder itself, which
# embeds with `get_text_features` (its `pooler_output` is the `sentence_embedding`) and truncates at `max_seq_length`.
SENTENCE_TRANSFORMERS_MODULE = "sentence_transformers.models.Transformer"
SENTENCE_TRANSFORMERS_MODULES = [{"idx": 0, "name": "0", "path": "", "type": SENTENCE_TRANSFORMERS_MODULE}]
SENTENCE_TRANSFORMERS_MODALITIES = {"text": {"method": "get_text_features", "method_output_name": "pooler_output"}}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_out_of_scope_threshold(method: str, threshold: float, task: str) -> float:
    """`threshold` as a float, or a `ValueError` unless it is a number in the range of the `method`'s scores."""
    low, high = OUT_OF_SCOPE_SCORE_RANGES[method]
    if not _is_number(threshold) or not low <= threshold <= high:
        raise ValueError(
            f"The out-of-scope threshold of {task!r} must be a number in [{low}, {high}] (the range of {method} "
            f"scores), got {threshold!r}."
        )
    return float(threshold)


class MultiTaskBertConfig(PreTrainedConfig):
    r"""
    Everything needed to rebuild a [`MultiTaskBertModel`] offline.

    Args:
        encoder (`dict` or `PreTrainedConfig`):
            Config of the shared encoder (any encoder `AutoModel` knows: BERT, DistilBERT, RoBERTa, MPNet...).
        pooling (`str`, defaults to `"mean"`):
            How token states become the sentence vector: `"mean"`, `"cls"` or `"max"` (padding is masked out).
        sentence_head_pooling (`str`, *optional*):
            Pooling of the sentence-level heads' own: `"mean"`, `"cls"`, `"max"` or `"attention"` (a learned weight
            per token, padding masked out). By default they read the sentence embedding's pooled vector.
        normalize_embeddings (`bool`, defaults to `True`):
            Whether `sentence_embedding` is L2-normalised (as sentence-transformers' `Normalize` module).
        classifier_dropout (`float`, defaults to 0.1):
            Dropout before every task head.
        tasks (`dict`):
            Ordered `{name: {"level": "sentence" | "token", "labels": [...]}}`. Sentence-level heads read the
            pooled vector (or their own, see `sentence_head_pooling`), token-level heads every token state. Defaults
            to an `intent` and an `ner` head. A task may name its predictions in pipeline results (`"result_key"`) and
            its scores in metrics (`"metric_prefix"`); both default to the task's name (`entities` and `entity` for
            `ner`, `DEFAULT_TASK_NAMING`). A sentence-level task may also have a `"temperature"` (its logits are
            divided by it before the softmax: calibrated scores) and an `"out_of_scope"` detector, `{"label": ...,
            "method": ..., "threshold": ..., "size": ...}`: an input whose out-of-scope score (`method`, one of
            `OUT_OF_SCOPE_METHODS`) is above `threshold` gets `label`, which is none of the head's labels; `size` is
            the number of fitted vectors the method keeps in the weights (class means or train embeddings). A
            sentence-level task may keep `"examples"`, `{"texts": [...], "labels": [...], "metric": ...}`: labelled
            utterances whose vectors are in the weights, answered from besides the head (`metric` one of
            `EXAMPLE_METRICS`; `"cosine"` also has the `"threshold"` of its distances, `"mahalanobis"` the
            `"error_scale"` of `ExampleMemory`).
        sentence_aware_token_heads (`bool`, defaults to `False`):
            Token-level heads also read the sentence-level heads' predictions: every token's features get, per
            sentence task, a learned vector of its predicted label distribution (the softmax of its logits through a
            label embedding), as intent-aware joint models (slot gating, intent-slot attention) do. The token losses
            then train the sentence heads too.
        subword_pooling (`str`, defaults to `"first"`):
            What token-level heads read for a word cut into several sub-tokens: `"first"`, each sub-token's own state
            (tags are decided at a word's first sub-token), or `"mean"`, the mean of the word's sub-token states at
            each of them. `"mean"` finds words by WordPiece's continuation prefix (`##`): the model keeps which
            vocabulary entries continue a word (`MultiTaskBertModel.mark_word_continuations`), and needs `input_ids`.
        use_crf (`bool`, defaults to `False`):
            Put a linear-chain CRF (trained by likelihood, decoded by Viterbi) on every token-level head.
        task_weights (`dict`, *optional*):
            Weight of each task's loss in the joint loss; missing tasks weigh 1.0.
        uncertainty_weighting (`bool`, defaults to `False`):
            Learn the task weights as homoscedastic uncertainties (Kendall et al., 2018) instead.
        max_seq_length (`int`, *optional*):
            Longest input, in tokens, that sentence-transformers embeds: longer texts are truncated, as the backbone's
            own sentence-transformers model truncates them. `MultiTaskBertModel.from_backbone` takes the backbone's
            (from its `sentence_bert_config.json`, else its tokenizer's `model_max_length`); it defaults to the
            encoder's `max_position_embeddings`, and the model caps it at the positions its encoder can read.
            `save_pretrained` writes it, with `modules.json`, to `sentence_bert_config.json`.

    `get_text_config()` returns the encoder's config (vocabulary and hidden sizes are the encoder's).
    """

    model_type = "multitask_bert"
    sub_configs_defaults = {"encoder": SubConfigSpec(config_class=AutoConfig, model_type="bert")}
    keys_to_ignore_at_inference = ["losses", "last_hidden_state", "hidden_states", "attentions"]

    encoder: PreTrainedConfig | dict | None = None
    pooling: str = "mean"
    sentence_head_pooling: str | None = None
    normalize_embeddings: bool = True
    classifier_dropout: float = 0.1
    tasks: dict | None = None
    sentence_aware_token_heads: bool = False
    subword_pooling: str = "first"
    use_crf: bool = False
    task_weights: dict | None = None
    uncertainty_weighting: bool = False
    max_seq_length: int | None = None

    def __post_init__(self, **kwargs):
        if self.tasks is None:
            self.tasks = {name: dict(spec) for name, spec in DEFAULT_TASKS.items()}
        super().__post_init__(**kwargs)
        if self.max_seq_length is None:
            self.max_seq_length = getattr(self.encoder, "max_position_embeddings", None)
        self.validate_tasks()

    def get_text_config(self, decoder: bool | None = None, encoder: bool | None = None) -> PreTrainedConfig:
        """The encoder's config: the text model here (it has `vocab_size`, `hidden_size`...)."""
        return self.encoder

    def save_pretrained(self, save_directory: str | Path, **kwargs) -> None:
        """
        [`~PreTrainedConfig.save_pretrained`], plus `modules.json` and `sentence_bert_config.json`: with them,
        `SentenceTransformer(folder, trust_remote_code=True)` embeds with the model's `get_text_features` and truncates
        texts at `max_seq_length`.
        """
        super().save_pretrained(save_directory, **kwargs)
        folder = Path(save_directory)
        (folder / "modules.json").write_text(json.dumps(SENTENCE_TRANSFORMERS_MODULES, indent=2) + "\n")
        sentence_config = {
            **({"max_seq_length": self.max_seq_length} if self.max_seq_length is not None else {}),
            "modality_config": SENTENCE_TRANSFORMERS_MODALITIES,
            "module_output_name": "sentence_embedding",
        }
        (folder / "sentence_bert_config.json").write_text(json.dumps(sentence_config, indent=2) + "\n")

    def validate_tasks(self) -> None:
        """Raise a `ValueError` naming the problem if pooling, tasks or task weights are malformed."""
        if self.pooling not in POOLING_MODES:
            raise ValueError(f"Unknown pooling {self.pooling!r}; choose one of {', '.join(POOLING_MODES)}.")
        if self.sentence_head_pooling not in (None, *HEAD_POOLING_MODES):
            raise ValueError(
                f"Unknown sentence_head_pooling {self.sentence_head_pooling!r}; choose one of "
                f"{', '.join(HEAD_POOLING_MODES)} (or none: the heads read the sentence embedding's pooled vector)."
            )
        if self.subword_pooling not in SUBWORD_POOLING_MODES:
            raise ValueError(
                f"Unknown subword_pooling {self.subword_pooling!r}; choose one of {', '.join(SUBWORD_POOLING_MODES)}."
            )
        if not self.tasks:
            raise ValueError("A MultiTaskBertConfig needs at least one task head in `tasks`.")
        for name, spec in self.tasks.items():
            if not name.isidentifier():
                raise ValueError(f"Task name {name!r} must be a Python identifier (it becomes `{name}_labels`).")
            level = spec.get("level")
            if level not in TASK_LEVELS:
                raise ValueError(f"Task {name!r} has level {level!r}; choose one of {', '.join(TASK_LEVELS)}.")
            labels = spec.get("labels")
            if not labels:
                raise ValueError(f"Task {name!r} has an empty label list.")
            duplicates = sorted({label for label in labels if labels.count(label) > 1})
            if duplicates:
                raise ValueError(f"Task {name!r} lists these labels more than once: {duplicates}.")
            self._validate_out_of_scope(name, spec)
            if spec.get("examples") is not None:
                self._validate_examples(name, spec)
            for key in TASK_NAMING_KEYS:
                if key in spec and not (isinstance(spec[key], str) and spec[key].isidentifier()):
                    raise ValueError(f"Task {name!r}: `{key}` must be an identifier, got {spec[key]!r}.")
        if self.sentence_aware_token_heads and not (self.sentence_tasks and self.token_tasks):
            levels = {name: spec["level"] for name, spec in self.tasks.items()}
            raise ValueError(
                f"`sentence_aware_token_heads` needs a sentence-level and a token-level task; got {levels}."
            )
        unknown = sorted(set(self.task_weights or {}) - set(self.tasks))
        if unknown:
            raise ValueError(f"`task_weights` names tasks that do not exist: {unknown}; tasks: {list(self.tasks)}.")
        for task, weight in (self.task_weights or {}).items():
            if not _is_number(weight) or weight < 0:
                raise ValueError(f"`task_weights[{task!r}]` must be a number >= 0, got {weight!r}.")

    @staticmethod
    def _validate_out_of_scope(name: str, spec: dict) -> None:
        """Raise a `ValueError` if a task's temperature or out-of-scope detector is malformed."""
        temperature = spec.get("temperature")
        detector = spec.get("out_of_scope")
        if (temperature is not None or detector is not None) and spec["level"] != "sentence":
            raise ValueError(f"Task {name!r}: only sentence-level tasks have a temperature or an out-of-scope label.")
        if temperature is not None and not (_is_number(temperature) and 0 < temperature < float("inf")):
            raise ValueError(f"Task {name!r}: the temperature must be a positive number, got {temperature!r}.")
        if detector is None:
            return
        if not isinstance(detector, dict):
            raise ValueError(
                f"Task {name!r}: `out_of_scope` must be a dict (label, method, threshold), got {detector!r}."
            )
        label, method, threshold = detector.get("label"), detector.get("method"), detector.get("threshold")
        if not isinstance(label, str) or not label or label in spec["labels"]:
            raise ValueError(
                f"Task {name!r}: the out-of-scope label {label!r} must be a new label, not one of the head's."
            )
        if method not in OUT_OF_SCOPE_METHODS:
            raise ValueError(
                f"Task {name!r}: unknown out-of-scope method {method!r}; choose one of "
                f"{', '.join(OUT_OF_SCOPE_METHODS)}."
            )
        if threshold is not None:
            check_out_of_scope_threshold(method, threshold, name)
        size = detector.get("size")
        if method in OUT_OF_SCOPE_METHODS_WITH_VECTORS and not (_is_integer(size) and size > 0):
            raise ValueError(f"Task {name!r}: out-of-scope method {method!r} needs a positive `size`, got {size!r}.")

    def _validate_examples(self, name: str, spec: dict) -> None:
        """Raise a `ValueError` if a task's stored examples are malformed."""
        examples = spec["examples"]
        if spec["level"] != "sentence":
            raise ValueError(f"Task {name!r} is token-level: only sentence-level tasks keep examples.")
        if not isinstance(examples, dict) or examples.get("metric") not in EXAMPLE_METRICS:
            raise ValueError(
                f"Task {name!r}: `examples` needs texts, labels and a metric among {', '.join(EXAMPLE_METRICS)}."
            )
        self.check_examples(name, examples.get("texts"), examples.get("labels"))
        if examples["metric"] == "mahalanobis" and (spec.get("out_of_scope") or {}).get("method") != "mahalanobis":
            raise ValueError(f"Task {name!r}: examples compared by Mahalanobis distance need a Mahalanobis detector.")

    def check_examples(self, task: str, texts: list, labels: list) -> None:
        """Raise a `ValueError` naming the problem unless `texts` and `labels` can be examples of the `task`."""
        if task not in self.tasks:
            raise ValueError(f"No task named {task!r}; this model has {list(self.tasks)}.")
        spec = self.tasks[task]
        if spec["level"] != "sentence":
            raise ValueError(f"Task {task!r} is token-level: examples are for sentence-level tasks.")
        if not isinstance(texts, list) or not isinstance(labels, list) or len(texts) != len(labels) or not texts:
            raise ValueError(f"Task {task!r}: examples need as many labels as texts, and at least one.")
        for index, (text, label) in enumerate(zip(texts, labels, strict=True)):
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"Task {task!r}: example {index} has no text ({text!r}).")
            if not isinstance(label, str) or not label:
                raise ValueError(f"Task {task!r}: example {index} ({text!r}) has no label ({label!r}).")
        detector = spec.get("out_of_scope") or {}
        reserved = {"UNK", detector.get("label")} - {None}
        if clashes := sorted(reserved & set(labels)):
            raise ValueError(
                f"Task {task!r}: {', '.join(map(repr, clashes))} cannot be an example label (it means unseen in "
                "training, or out of scope)."
            )

    def task_examples(self, task: str) -> dict | None:
        """A sentence-level task's stored examples (`texts`, `labels`, `metric`), if it has any."""
        return self.tasks[task].get("examples")

    def task_result_key(self, task: str) -> str:
        """Where the pipeline puts a task's prediction in a result (`entities` for the default `ner` task)."""
        return self._task_name(task, "result_key")

    def task_metric_prefix(self, task: str) -> str:
        """How a token-level task's scores are named in metrics: `<prefix>_f1` etc. (`entity_f1` for `ner`)."""
        return self._task_name(task, "metric_prefix")

    def _task_name(self, task: str, key: str) -> str:
        spec = self.tasks[task]
        return spec.get(key) or DEFAULT_TASK_NAMING.get(task, {}).get(key, task)

    def task_temperature(self, task: str) -> float:
        """What a sentence-level task's logits are divided by before the softmax (1 unless calibrated)."""
        return float(self.tasks[task].get("temperature", 1.0))

    def checked_out_of_scope_threshold(self, task: str, threshold: float) -> float:
        """`threshold` for `task`'s detector as a float, or a `ValueError` if it is outside the method's range."""
        detector = self.task_out_of_scope(task)
        if detector is None:
            raise ValueError(f"Task {task!r} has no out-of-scope detector.")
        return check_out_of_scope_threshold(detector["method"], threshold, task)

    def task_out_of_scope(self, task: str) -> dict | None:
        """A sentence-level task's out-of-scope detector (`label`, `method`, `threshold`, `size`), if it has one."""
        return self.tasks[task].get("out_of_scope")

    @property
    def sentence_tasks(self) -> list[str]:
        return [name for name, spec in self.tasks.items() if spec["level"] == "sentence"]

    @property
    def token_tasks(self) -> list[str]:
        return [name for name, spec in self.tasks.items() if spec["level"] == "token"]

    def task_labels(self, task: str) -> list[str]:
        """The label list of one task head, in id order."""
        if task not in self.tasks:
            raise ValueError(f"No task head named {task!r}; this model has {list(self.tasks)}.")
        return list(self.tasks[task]["labels"])

    def task_id2label(self, task: str) -> dict[int, str]:
        return dict(enumerate(self.task_labels(task)))

    def task_label2id(self, task: str) -> dict[str, int]:
        return {label: index for index, label in enumerate(self.task_labels(task))}


__all__ = [
    "DEFAULT_SENTENCE_TASK",
    "DEFAULT_TASKS",
    "DEFAULT_TOKEN_TASK",
    "MultiTaskBertConfig",
    "OUT_OF_SCOPE_METHODS",
    "OUT_OF_SCOPE_SCORE_RANGES",
    "check_out_of_scope_threshold",
]
