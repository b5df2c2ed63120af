"""The `joint-intent-ner` pipeline: intent, entities and (optionally) the sentence embedding of raw texts.

This file travels with saved models (Hub remote code): it imports only torch, transformers and the standard library.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.pipelines.base import ChunkPipeline

from .configuration_multitask_bert import DEFAULT_TASK_NAMING

PIPELINE_TASK = "joint-intent-ner"
# The label that data readers give to labels unseen in training: a head has a row for it, but it is never an answer.
UNKNOWN_LABEL = "UNK"


def answerable_logits(labels: list[str], logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """A sentence-level head's logits divided by its `temperature`, with `UNK` (unseen in training) masked out, so it
    is never an answer and takes no probability."""
    scaled = logits.float() / temperature
    if UNKNOWN_LABEL in labels and len(labels) > 1:
        unknown = torch.zeros(len(labels), dtype=torch.bool, device=logits.device)
        unknown[labels.index(UNKNOWN_LABEL)] = True
        scaled = scaled.masked_fill(unknown, float("-inf"))
    return scaled


def result_key(task: str, config: Any = None) -> str:
    """Where a task's prediction goes in a result: `config.task_result_key(task)` (`"entities"` for the default `ner`
    task); without a config (or with one saved before tasks named their results), the default naming."""
    if config is not None and hasattr(config, "task_result_key"):
        return config.task_result_key(task)
    return DEFAULT_TASK_NAMING.get(task, {}).get("result_key", task)


def word_spans(tokenizer: Any, text: str) -> list[tuple[int, int]]:
    """
    The words of `text` as character spans `(start, end)`: the words of the fast `tokenizer`'s own normalizer and
    pre-tokenizer (its `word_ids()`), without empty ones. Training data and this pipeline split texts by this one rule,
    then feed the words to the tokenizer with `is_split_into_words=True`, so a word's tokens are the same in both.
    """
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    spans: dict[int, tuple[int, int]] = {}
    for word_id, (start, end) in zip(encoding.word_ids(), encoding["offset_mapping"], strict=True):
        if word_id is not None:
            known = spans.get(word_id, (start, end))
            spans[word_id] = (min(start, known[0]), max(end, known[1]))
    return [span for _, span in sorted(spans.items()) if span[0] < span[1]]


class JointIntentNerPipeline(ChunkPipeline):
    """
    Intent and entities of each text, from one encoder pass of a MultiTaskBert model.

    Call it with a string or a list of strings (`batch_size` batches them). Each text gives
    `{"intent": {"label", "score"}, "entities": [{"entity_group", "word", "start", "end", "score"}], "text"}`:

    - one key per sentence-level task (`"intent"` for the default heads); with `top_k=k` its value is the list of the
      `k` best `{"label", "score"}` instead. Scores are the head's calibrated probabilities (logits over the task's
      `temperature`); `UNK` (a label unseen in training) is never an answer. A task with an out-of-scope detector
      adds `"out_of_scope_score"` (higher: further out of scope), and a text whose score is above the threshold
      (`out_of_scope_threshold=` overrides the saved one: a number, or `{task: number}`) gets the out-of-scope label
      instead, with `score` the probability left to the other labels (1 - the best label's); with `top_k` it comes
      first, then the `k - 1` best labels. A task with stored examples (`MultiTaskBertModel.add_examples`) also
      answers from them where the input is nearer to a label's examples than to the head's classes
      (`_with_examples`); its answers then say which path decided, `"source"`: `"head"`, `"examples"` or
      `"out_of_scope"`;
    - one key per token-level task with its entities (`"entities"` for the default `ner` task, `result_key`). Words
      are the tokenizer's own (`word_spans`, the rule that splits training data too). The tag of a word is the tag
      of its first sub-token (Viterbi over the words with a CRF model); words are joined into entities by their
      `B-`/`I-` tags (an `I-X` that does not follow an `X` word opens a new entity); `"O"`, `"UNK"` and tags
      without a `B-`/`I-` prefix end entities. `score` is the mean of the words' tag
      probabilities and `text[start:end] == word` always holds;
    - `return_embedding=True` adds `"sentence_embedding"` (list of floats): exactly the model's embedding when the
      text fits in one window.

    Texts longer than the model's maximum length are split into windows of `max_length` tokens that overlap by
    `stride` tokens (default: a quarter of `max_length`). Each word takes its tag from the window in which it sits
    furthest from an edge, so no word is dropped; sentence-level probabilities are averaged over the windows, and the
    embedding is the token-weighted mean of the windows' embeddings (re-normalised if the model normalises).

    An empty or whitespace-only text (or one of only characters the tokenizer drops, such as control and zero-width
    characters) has no entities; its intent is what the model predicts for the bare special tokens (`[CLS] [SEP]`),
    i.e. the model's prior, so filter such texts out if that is not wanted. A text that is not valid Unicode (a lone
    surrogate, e.g. half of an emoji cut from JSON) raises a `ValueError` naming its position.
    """

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.tokenizer is None or not self.tokenizer.is_fast:
            raise ValueError("The joint-intent-ner pipeline needs a fast tokenizer (it reads offsets and word ids).")

    def _sanitize_parameters(
        self,
        top_k: int | None = None,
        return_embedding: bool | None = None,
        max_length: int | None = None,
        stride: int | None = None,
        out_of_scope_threshold: float | dict[str, float] | None = None,
    ) -> tuple[dict, dict, dict]:
        preprocess_params, postprocess_params = {}, {}
        if out_of_scope_threshold is not None:
            postprocess_params["thresholds"] = self._thresholds(out_of_scope_threshold)
        if max_length is not None:
            preprocess_params["max_length"] = max_length
        if stride is not None:
            preprocess_params["stride"] = stride
        if top_k is not None:
            if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
                raise ValueError(f"`top_k` must be a positive integer, got {top_k!r}.")
            postprocess_params["top_k"] = top_k
        if return_embedding is not None:
            postprocess_params["return_embedding"] = bool(return_embedding)
        return preprocess_params, {}, postprocess_params

    def _thresholds(self, given: float | dict[str, float]) -> dict[str, float]:
        """`out_of_scope_threshold=` as `{task: threshold}`, checked against the tasks' detectors."""
        config = self.model.config
        detected = [task for task in config.sentence_tasks if config.task_out_of_scope(task)]
        if not detected:
            raise ValueError("`out_of_scope_threshold` given, but no task of this model has an out-of-scope detector.")
        thresholds = given if isinstance(given, dict) else dict.fromkeys(detected, given)
        unknown = sorted(set(thresholds) - set(detected))
        if unknown:
            raise ValueError(f"`out_of_scope_threshold` names {unknown}; the tasks with a detector are {detected}.")
        return {task: config.checked_out_of_scope_threshold(task, value) for task, value in thresholds.items()}

    def __call__(self, inputs: str | list[str], **kwargs: Any) -> dict[str, Any] | list[dict[str, Any]]:
        """Predict for one text (returns one result) or a list of texts (returns a list of results)."""
        if isinstance(inputs, tuple):
            inputs = list(inputs)
        if isinstance(inputs, list):
            for index, text in enumerate(inputs):
                if not isinstance(text, str):
                    raise TypeError(f"Input {index} is a {type(text).__name__}, not a string: {text!r:.80}")
            if not inputs:
                return []
        return super().__call__(inputs, **kwargs)

    def default_max_length(self) -> int:
        """Tokens per window: the smaller of the tokenizer's and the encoder's maximum length."""
        return min(self.tokenizer.model_max_length, self._encoder_positions() or self.tokenizer.model_max_length)

    def _encoder_positions(self) -> int | None:
        return getattr(self.model.config.encoder, "max_position_embeddings", None)

    def preprocess(self, text: str, max_length: int | None = None, stride: int | None = None):
        if not isinstance(text, str):
            raise TypeError(f"The joint-intent-ner pipeline takes strings, got a {type(text).__name__}: {text!r:.80}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError(
                f"Text {text!r:.80} is not valid Unicode: lone surrogate {text[error.start]!r} at character "
                f"{error.start} (half of a character such as an emoji); repair or drop it before calling the pipeline."
            ) from None
        max_length = max_length or self.default_max_length()
        if self._encoder_positions() and max_length > self._encoder_positions():
            raise ValueError(f"`max_length` {max_length} exceeds the encoder's {self._encoder_positions()} positions.")
        room = max_length - self.tokenizer.num_special_tokens_to_add()
        stride = room // 4 if stride is None else stride
        if not 0 <= stride < room:
            raise ValueError(f"`stride` must be in [0, {room}) for windows of {max_length} tokens, got {stride}.")
        spans = word_spans(self.tokenizer, text)
        encoding = self.tokenizer(
            [text[start:end] for start, end in spans],
            is_split_into_words=True,
            truncation=True,
            max_length=max_length,
            stride=stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        num_windows = len(encoding["input_ids"])
        model_keys = [key for key in ("input_ids", "attention_mask", "token_type_ids") if key in encoding]
        for index in range(num_windows):
            word_ids = encoding.word_ids(index)
            # A word's first sub-token: it starts at the word's first character and does not continue the previous
            # token (a window may begin inside a word).
            is_word_start = [
                word_id is not None and start == 0 and (position == 0 or word_ids[position - 1] != word_id)
                for position, (word_id, (start, _)) in enumerate(
                    zip(word_ids, encoding["offset_mapping"][index], strict=True)
                )
            ]
            window = {key: torch.tensor([encoding[key][index]]) for key in model_keys}
            window["word_start_mask"] = torch.tensor([is_word_start], dtype=torch.long)
            window["word_ids"] = word_ids
            window["text"] = text if index == 0 else None
            window["word_spans"] = spans if index == 0 else None
            window["is_last"] = index == num_windows - 1
            yield window

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, Any]:
        word_start_mask = model_inputs.pop("word_start_mask").bool()
        carried = {key: model_inputs.pop(key) for key in ("word_ids", "text", "word_spans", "is_last")}
        output = self.model(**model_inputs)
        config = self.model.config
        outputs = {
            "sentence_embedding": output.sentence_embedding.float(),
            "attention_mask": model_inputs["attention_mask"],
        }
        scores = output.out_of_scope_scores or {}
        distances = getattr(output, "example_distances", None) or {}
        for task in config.sentence_tasks:
            logits = answerable_logits(config.task_labels(task), output.logits[task], config.task_temperature(task))
            outputs[f"{task}_probabilities"] = logits.softmax(dim=-1)
            if task in scores:
                outputs[f"{task}_out_of_scope_score"] = scores[task].float()
            if task in distances:
                outputs[f"{task}_example_distances"] = distances[task].float()
        for task in config.token_tasks:
            logits = output.logits[task].float()
            tags = self.model.decode_tags(task, logits, word_start_mask)
            scores = logits.softmax(dim=-1).gather(-1, tags.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            outputs[f"{task}_tags"] = tags
            outputs[f"{task}_scores"] = scores
        return {**outputs, **carried}

    def postprocess(
        self,
        windows: list[dict[str, Any]],
        top_k: int | None = None,
        return_embedding: bool = False,
        thresholds: dict[str, float] | None = None,
    ) -> dict[str, Any]:
        config = self.model.config
        text = windows[0]["text"]
        result: dict[str, Any] = {}
        for task in config.sentence_tasks:
            probabilities = torch.cat([window[f"{task}_probabilities"] for window in windows]).mean(dim=0)
            ranked = self._ranked_labels(config.task_labels(task), probabilities, top_k or 1)
            detector = config.task_out_of_scope(task)
            score = None
            if detector is not None:
                score = float(torch.cat([window[f"{task}_out_of_scope_score"] for window in windows]).mean())
            examples = config.task_examples(task) if hasattr(config, "task_examples") else None
            from_examples = False
            if examples is not None:
                distances = torch.cat([window[f"{task}_example_distances"] for window in windows]).mean(dim=0)
                ranked, score, from_examples = self._with_examples(examples, distances, ranked, score, top_k or 1)
            if detector is not None:
                threshold = (thresholds or {}).get(task, detector["threshold"])
                ranked = [{**answer, "out_of_scope_score": score} for answer in ranked]
                if (
                    threshold is not None
                    and score > threshold
                    and not (from_examples and examples["metric"] == "cosine")
                ):
                    rejected = {"label": detector["label"], "score": 1.0 - ranked[0]["score"]}
                    if examples is not None:
                        rejected["source"] = "out_of_scope"
                    ranked = [{**rejected, "out_of_scope_score": score}, *ranked[: (top_k or 1) - 1]]
            result[task] = ranked if top_k is not None else ranked[0]
        for task in config.token_tasks:
            result[result_key(task, config)] = self._entities(text, windows, task, config.task_labels(task))
        result["text"] = text
        if return_embedding:
            result["sentence_embedding"] = self._embedding(windows, config.normalize_embeddings).tolist()
        return result

    @staticmethod
    def _with_examples(
        examples: dict, distances: torch.Tensor, ranked: list[dict], score: float | None, top_k: int
    ) -> tuple[list[dict], float | None, bool]:
        """
        The head's `ranked` answers, each marked `"source": "head"`, unless the input is nearer to a label's stored
        examples than to the head's classes: then that label comes first, `"source": "examples"`.

        - `"mahalanobis"`: nearer than to every class mean of the head's detector (the out-of-scope `score`, which
          becomes the smaller of the two distances, so an input near none of them stays out of scope); its score is
          `sigmoid((score - distance) / 2)`, the two Gaussians' posterior.
        - `"cosine"`: within the examples' `threshold` of cosine distance (then in scope); its score is the cosine
          similarity.
        """
        names = list(dict.fromkeys(examples["labels"]))
        nearest = int(distances.argmin())
        distance = float(distances[nearest])
        if examples["metric"] == "mahalanobis":
            from_examples = distance < score
            confidence = float(torch.sigmoid(torch.tensor((score - distance) / 2.0)))
            score = min(score, distance)
        else:
            from_examples = distance <= examples["threshold"]
            confidence = 1.0 - distance
        ranked = [{**answer, "source": "head"} for answer in ranked]
        if from_examples:
            answer = {"label": names[nearest], "score": confidence, "source": "examples"}
            ranked = [answer, *[other for other in ranked if other["label"] != answer["label"]]][:top_k]
        return ranked, score, from_examples

    @staticmethod
    def _ranked_labels(labels: list[str], probabilities: torch.Tensor, top_k: int) -> list[dict]:
        """The `top_k` best labels with their probabilities; never `UNK` (unless it is the head's only label)."""
        answerable = [index for index, label in enumerate(labels) if label != UNKNOWN_LABEL] or [0]
        scores, order = probabilities[answerable].topk(min(top_k, len(answerable)))
        return [
            {"label": labels[answerable[index]], "score": score}
            for index, score in zip(order.tolist(), scores.tolist(), strict=True)
        ]

    @staticmethod
    def _entities(text: str, windows: list[dict[str, Any]], task: str, labels: list[str]) -> list[dict[str, Any]]:
        spans = windows[0]["word_spans"]
        best: dict[int, tuple[int, str, float]] = {}  # word -> (distance to the window's edge, tag, score)
        for window in windows:
            positions = window["attention_mask"][0].nonzero().squeeze(1).tolist()
            tags = window[f"{task}_tags"][0, positions].tolist()
            scores = window[f"{task}_scores"][0, positions].tolist()
            content = [index for index, word_id in enumerate(window["word_ids"]) if word_id is not None]
            for index, word_id in enumerate(window["word_ids"]):
                if word_id is None or tags[index] < 0:
                    continue
                distance = min(index - content[0], content[-1] - index)
                if word_id not in best or distance > best[word_id][0]:
                    best[word_id] = (distance, labels[tags[index]], scores[index])

        groups: list[tuple[str, list[int]]] = []  # (entity type, its words)
        previous_type = None
        for word_id in sorted(best):
            prefix, _, entity_type = best[word_id][1].partition("-")
            if prefix not in ("B", "I") or not entity_type:
                previous_type = None
                continue
            if prefix == "B" or entity_type != previous_type:
                groups.append((entity_type, []))
            groups[-1][1].append(word_id)
            previous_type = entity_type

        entities = []
        for entity_type, word_ids in groups:
            start, end = spans[word_ids[0]][0], spans[word_ids[-1]][1]
            score = sum(best[word_id][2] for word_id in word_ids) / len(word_ids)
            entities.append(
                {"entity_group": entity_type, "word": text[start:end], "start": start, "end": end, "score": score}
            )
        return entities

    @staticmethod
    def _embedding(windows: list[dict[str, Any]], normalize: bool) -> torch.Tensor:
        embeddings = torch.cat([window["sentence_embedding"] for window in windows])
        if len(windows) == 1:
            return embeddings[0]
        weights = torch.tensor([float(window["attention_mask"].sum()) for window in windows])
        mean = (embeddings * weights.unsqueeze(1)).sum(dim=0) / weights.sum()
        return torch.nn.functional.normalize(mean, dim=0) if normalize else mean


__all__ = [
    "JointIntentNerPipeline",
    "PIPELINE_TASK",
    "UNKNOWN_LABEL",
    "answerable_logits",
    "result_key",
    "word_spans",
]
