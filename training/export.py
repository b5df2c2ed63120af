"""ONNX export (all heads and the embedding as outputs), int8 dynamic quantization, and an onnxruntime-backed model
that the `joint-intent-ner` pipeline accepts in place of the PyTorch one.

    multitask-bert export MODEL_DIR --onnx OUT_DIR [--quantize int8] [--eval-file utterances.txt]

writes `OUT_DIR/model.onnx` (and `model_int8.onnx`), the config and the tokenizer (plus `crf.safetensors` for CRF
models), checks onnxruntime against PyTorch, and compares int8 with fp32 on evaluation texts.
"""

from __future__ import annotations

import inspect
import json
import logging
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import PreTrainedTokenizerBase, pipeline

from multitask_bert.modeling import MultiTaskBertConfig, MultiTaskBertModel, MultiTaskBertOutput
from multitask_bert.modeling.modeling_multitask_bert import IGNORE_INDEX, ConditionalRandomField
from multitask_bert.modeling.pipeline_multitask_bert import PIPELINE_TASK, result_key

from .cli import CommandParser
from .loading import check_model_location, load_tokenizer

if TYPE_CHECKING:
    import onnxruntime

logger = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
INT8_FILE = "model_int8.onnx"
CRF_FILE = "crf.safetensors"
EMBEDDING_OUTPUT = "sentence_embedding"
MAX_ABS_DIFF = 1e-4
# Varied lengths and a batch of three, unlike the two-text example the graph is traced with.
PARITY_TEXTS = [
    "wake me up at 7 tomorrow",
    "cancel the meeting with Anna and Bob on friday afternoon, then remind me to call Carol at 5pm",
    "hi",
]


def onnx_input_names(model: MultiTaskBertModel, tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """`input_ids`, `attention_mask`, and `token_type_ids` when the tokenizer makes them and the encoder reads them."""
    names = ["input_ids", "attention_mask"]
    if (
        "token_type_ids" in tokenizer.model_input_names
        and "token_type_ids" in inspect.signature(model.backbone.forward).parameters
    ):
        names.append("token_type_ids")
    return names


def out_of_scope_tasks(config: MultiTaskBertConfig) -> list[str]:
    """The sentence-level tasks with an out-of-scope detector, in config order."""
    return [task for task in config.sentence_tasks if config.task_out_of_scope(task) is not None]


def onnx_output_names(config: MultiTaskBertConfig) -> list[str]:
    """`<task>_logits` for every head, in config order, then `sentence_embedding`, then `<task>_out_of_scope_score`
    for every task with an out-of-scope detector."""
    scores = [f"{task}_out_of_scope_score" for task in out_of_scope_tasks(config)]
    return [f"{task}_logits" for task in config.tasks] + [EMBEDDING_OUTPUT] + scores


class _DropRecords(logging.Filter):
    """Drops log records whose message starts with one of `prefixes`."""

    def __init__(self, *prefixes: str):
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefixes)


@contextmanager
def quiet_export() -> Iterator[None]:
    """Silence what the exporter and the quantizer say about our calls that means nothing to users: operators of
    torchvision (not installed, not used) that cannot be registered, the dynamic axes sharing one name (on purpose),
    a pytree deprecation inside torch, and onnxruntime's advice to pre-process image models."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    root_filter = _DropRecords("Please consider to run pre-processing before quantization")
    logging.getLogger().addFilter(root_filter)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"# The axis name: \w+ will not be used", category=UserWarning)
            warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)`", category=FutureWarning)
            yield
    finally:
        registration.setLevel(level)
        logging.getLogger().removeFilter(root_filter)


class _FlatOutputs(nn.Module):
    """The model with a flat tuple of outputs, as the ONNX graph has them."""

    def __init__(self, model: MultiTaskBertModel):
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, ...]:
        output = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        scores = [output.out_of_scope_scores[task] for task in out_of_scope_tasks(self.model.config)]
        return (*(output.logits[task] for task in self.model.config.tasks), output.sentence_embedding, *scores)


class OnnxMultiTaskModel(nn.Module):
    """
    An exported model run by onnxruntime behind the PyTorch model's interface (`config`, `forward` returning a
    [`MultiTaskBertOutput`], `decode_tags`), so the `joint-intent-ner` pipeline takes it unchanged:

        model = OnnxMultiTaskModel.from_pretrained("onnx_dir", file_name="model_int8.onnx")
        ner = pipeline("joint-intent-ner", model=model, tokenizer=AutoTokenizer.from_pretrained("onnx_dir"))
    """

    def __init__(
        self,
        session: onnxruntime.InferenceSession,
        config: MultiTaskBertConfig,
        crf_state: dict[str, torch.Tensor] | None = None,
    ):
        super().__init__()
        self.session = session
        self.config = config
        self.input_names = [node.name for node in session.get_inputs()]
        expected = onnx_output_names(config)
        found = [node.name for node in session.get_outputs()]
        if found != expected:
            raise ValueError(f"The ONNX graph's outputs {found} do not match the config's heads {expected}.")
        # The CRF's Viterbi runs in PyTorch with the exported transitions, as in `MultiTaskBertModel`.
        self.crfs = nn.ModuleDict(
            {task: ConditionalRandomField(len(config.tasks[task]["labels"])) for task in config.token_tasks}
            if config.use_crf
            else {}
        )
        if config.use_crf:
            self.crfs.load_state_dict(crf_state or {})

    @classmethod
    def from_pretrained(
        cls,
        onnx_dir: str | Path,
        file_name: str = ONNX_FILE,
        providers: list[str] | None = None,
        session_options: onnxruntime.SessionOptions | None = None,
    ) -> OnnxMultiTaskModel:
        """Load `file_name` (e.g. `model_int8.onnx`) of a folder written by `export_onnx`; `providers` and
        `session_options` go to `onnxruntime.InferenceSession` (default: CPU, onnxruntime's thread settings)."""
        import onnxruntime

        onnx_dir = Path(onnx_dir)
        path = onnx_dir / file_name
        if not path.is_file():
            raise FileNotFoundError(
                f"No ONNX model at {path}; write one with `multitask-bert export MODEL --onnx DIR`."
            )
        session = onnxruntime.InferenceSession(
            str(path), sess_options=session_options, providers=providers or ["CPUExecutionProvider"]
        )
        config = MultiTaskBertConfig.from_pretrained(onnx_dir)
        crf_path = onnx_dir / CRF_FILE
        crf_state = load_file(str(crf_path)) if config.use_crf and crf_path.is_file() else None
        if config.use_crf and crf_state is None:
            raise FileNotFoundError(f"{onnx_dir} holds a CRF model but no {CRF_FILE} with its transitions.")
        return cls(session, config, crf_state)

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **other_inputs: torch.Tensor
    ) -> MultiTaskBertOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        given = {"input_ids": input_ids, "attention_mask": attention_mask, **other_inputs}
        if "token_type_ids" in self.input_names and "token_type_ids" not in given:
            given["token_type_ids"] = torch.zeros_like(input_ids)
        feed = {name: given[name].detach().cpu().numpy().astype(np.int64) for name in self.input_names}
        outputs = [torch.from_numpy(array).to(input_ids.device) for array in self.session.run(None, feed)]
        num_tasks = len(self.config.tasks)
        logits = dict(zip(self.config.tasks, outputs[:num_tasks], strict=True))
        scores = dict(zip(out_of_scope_tasks(self.config), outputs[num_tasks + 1 :], strict=True))
        return MultiTaskBertOutput(
            logits=logits, sentence_embedding=outputs[num_tasks], out_of_scope_scores=scores or None
        )

    def decode_tags(self, task: str, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Best tag ids at the `mask` positions (Viterbi with a CRF), `-100` elsewhere: as `MultiTaskBertModel`."""
        mask = mask.bool()
        if task in self.crfs:
            return self.crfs[task].decode(logits, mask)
        return logits.argmax(dim=-1).masked_fill(~mask, IGNORE_INDEX)


@dataclass
class ExportReport:
    onnx_path: Path
    max_abs_diff: dict[str, float]
    int8_path: Path | None = None
    int8_metrics: dict[str, float] = field(default_factory=dict)


def export_onnx(
    model_dir: str | Path,
    output_dir: str | Path,
    quantize: str | None = None,
    eval_texts: list[str] | None = None,
    opset: int | None = None,
    batch_size: int = 32,
    eval_gold: list[dict] | None = None,
) -> ExportReport:
    """Export, verify against PyTorch (raises if any output differs by more than 1e-4), optionally quantize."""
    output_dir = Path(output_dir)
    check_model_location(model_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model = MultiTaskBertModel.from_pretrained(model_dir).eval()
    tokenizer = load_tokenizer(model_dir)
    input_names = onnx_input_names(model, tokenizer)
    output_names = onnx_output_names(model.config)

    example = tokenizer(["set a timer for ten minutes", "call Anna"], padding=True, return_tensors="pt")
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    onnx_path = output_dir / ONNX_FILE
    with quiet_export():
        torch.onnx.export(
            _FlatOutputs(model).eval(),
            (),
            str(onnx_path),
            kwargs={name: example[name] for name in input_names},
            input_names=input_names,
            output_names=output_names,
            dynamic_shapes={name: {0: batch, 1: sequence} for name in input_names},
            opset_version=opset,
            external_data=False,
            verbose=False,
        )
    model.config.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    if model.config.use_crf:
        save_file(
            {name: tensor.contiguous() for name, tensor in model.crfs.state_dict().items()}, output_dir / CRF_FILE
        )

    max_abs_diff = check_parity(model, tokenizer, OnnxMultiTaskModel.from_pretrained(output_dir))
    report = ExportReport(onnx_path=onnx_path, max_abs_diff=max_abs_diff)
    if quantize is not None:
        if quantize != "int8":
            raise ValueError(f"Unknown quantization {quantize!r}; supported: int8.")
        report.int8_path = quantize_int8(onnx_path, output_dir / INT8_FILE)
        if eval_texts:
            reference = OnnxMultiTaskModel.from_pretrained(output_dir)
            quantized = OnnxMultiTaskModel.from_pretrained(output_dir, file_name=INT8_FILE)
            report.int8_metrics = compare_models(reference, quantized, tokenizer, eval_texts, batch_size, eval_gold)
    return report


def check_parity(
    model: MultiTaskBertModel, tokenizer: PreTrainedTokenizerBase, onnx_model: OnnxMultiTaskModel
) -> dict[str, float]:
    """Largest absolute difference of every output between PyTorch and onnxruntime (relative to the value, at least 1,
    for out-of-scope scores); raises above 1e-4."""
    batch = tokenizer(PARITY_TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = model(**batch)
    found = onnx_model(**batch)
    differences = {
        f"{task}_logits": float((expected.logits[task] - found.logits[task]).abs().max()) for task in model.config.tasks
    }
    differences[EMBEDDING_OUTPUT] = float((expected.sentence_embedding - found.sentence_embedding).abs().max())
    # Out-of-scope scores (a distance can be in the hundreds) are compared relative to their size.
    for task in out_of_scope_tasks(model.config):
        want, got = expected.out_of_scope_scores[task], found.out_of_scope_scores[task]
        differences[f"{task}_out_of_scope_score"] = float(((want - got).abs() / want.abs().clamp(min=1.0)).max())
    too_far = {name: diff for name, diff in differences.items() if diff > MAX_ABS_DIFF}
    if too_far:
        raise RuntimeError(f"onnxruntime and PyTorch disagree by more than {MAX_ABS_DIFF}: {too_far}")
    return differences


def quantize_int8(onnx_path: Path, int8_path: Path) -> Path:
    """onnxruntime dynamic quantization: int8 weights (one scale per output channel, which keeps entity F1 against
    fp32 at 0.98 instead of 0.94 on the embedded test split), activations quantized on the fly."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(onnx_path))
    # The exporter annotates initializers with shapes that the quantizer's transposed weights then contradict.
    del graph.graph.value_info[:]
    with tempfile.TemporaryDirectory() as scratch:
        plain_path = Path(scratch) / ONNX_FILE
        onnx.save(graph, str(plain_path))
        with quiet_export():
            quantize_dynamic(str(plain_path), str(int8_path), weight_type=QuantType.QInt8, per_channel=True)
    return int8_path


def compare_models(
    reference: nn.Module,
    candidate: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    batch_size: int,
    gold: list[dict] | None = None,
) -> dict[str, float]:
    """
    Per task the agreement (`<task>_agreement`) or exact-span entity F1 (`entity_agreement_f1` for `ner`,
    `<task>_agreement_f1`) of `candidate` against `reference`,
    and the mean embedding cosine; with `gold` (JSONL records, e.g. `{"intent", "entities": [{"start", "end",
    "label"}]}`), also each model's scores against it (`fp32_*`, `int8_*`, `score_against_gold`) and the difference
    of their entity F1.
    """
    expected = pipeline(PIPELINE_TASK, model=reference, tokenizer=tokenizer)(
        texts, batch_size=batch_size, return_embedding=True
    )
    found = pipeline(PIPELINE_TASK, model=candidate, tokenizer=tokenizer)(
        texts, batch_size=batch_size, return_embedding=True
    )
    metrics = {}
    for task in reference.config.sentence_tasks:
        same = sum(left[task]["label"] == right[task]["label"] for left, right in zip(expected, found, strict=True))
        metrics[f"{task}_agreement"] = same / len(texts)
    for task in reference.config.token_tasks:
        key = result_key(task)
        metrics[f"{score_prefix(task)}_agreement_f1"] = entity_f1(
            [result[key] for result in expected], [result[key] for result in found]
        )
    cosines = [
        float(np.dot(left[EMBEDDING_OUTPUT], right[EMBEDDING_OUTPUT]))
        / float(np.linalg.norm(left[EMBEDDING_OUTPUT]) * np.linalg.norm(right[EMBEDDING_OUTPUT]))
        for left, right in zip(expected, found, strict=True)
    ]
    metrics["embedding_cosine"] = float(np.mean(cosines))
    if gold is not None:
        for name, results in (("fp32", expected), ("int8", found)):
            scores = score_against_gold(results, gold, reference.config)
            metrics.update({f"{name}_{key}": value for key, value in scores.items()})
        if "fp32_entity_f1" in metrics:
            metrics["entity_f1_drop"] = metrics["fp32_entity_f1"] - metrics["int8_entity_f1"]
    return metrics


def score_against_gold(results: list[dict], gold: list[dict], config: MultiTaskBertConfig) -> dict[str, float]:
    """
    Per task, over the gold examples that label it (JSONL fields: a sentence task's name, `entities` for `ner`, a
    token task's name), the accuracy of pipeline results (`<task>_accuracy`) or their exact-span entity F1
    (`entity_f1` for `ner`, `<task>_f1`) against the gold character spans.
    """
    scores = {}
    for task in config.sentence_tasks:
        pairs = [(result, example[task]) for result, example in zip(results, gold, strict=True) if example.get(task)]
        if pairs:
            scores[f"{task}_accuracy"] = sum(result[task]["label"] == label for result, label in pairs) / len(pairs)
    for task in config.token_tasks:
        key = result_key(task)
        pairs = [
            (result, example[key])
            for result, example in zip(results, gold, strict=True)
            if example.get(key) is not None
        ]
        if pairs:
            reference = [
                [{"entity_group": span["label"], "start": span["start"], "end": span["end"]} for span in spans]
                for _, spans in pairs
            ]
            scores[f"{score_prefix(task)}_f1"] = entity_f1(reference, [result[key] for result, _ in pairs])
    return scores


def score_prefix(token_task: str) -> str:
    """The metrics' name of a token-level task's scores: `entity` for `ner` (`entity_f1`), else the task's name."""
    return "entity" if token_task == "ner" else token_task


def entity_f1(reference: list[list[dict]], predicted: list[list[dict]]) -> float:
    """Micro F1 of entities matched exactly by (text, type, start, end), as seqeval's strict entity F1."""

    def spans(results: list[list[dict]]) -> set[tuple]:
        return {
            (index, entity["entity_group"], entity["start"], entity["end"])
            for index, entities in enumerate(results)
            for entity in entities
        }

    expected, found = spans(reference), spans(predicted)
    if not expected and not found:
        return 1.0
    return 2 * len(expected & found) / (len(expected) + len(found))


def read_eval_examples(path: str | Path | None) -> list[dict]:
    """Evaluation examples `{"text", ...}`: lines of a text file, or JSONL with gold `intent` and character-span
    `entities` (as the embedded data); default: the embedded dataset's test split."""
    if path is None:
        from multitask_bert.training.data import default_data_dir

        path = default_data_dir() / "test.jsonl"
    if Path(path).suffix == ".jsonl":
        return [json.loads(line) for line in read_lines(path) if line.strip()]
    return [{"text": text} for text in read_lines(path)]


def read_lines(path: str | Path) -> list[str]:
    """One text per line (line ends stripped, empty lines kept), with a clear error for a missing file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such file: {path}")
    return path.read_text(encoding="utf-8").splitlines()


def build_parser() -> CommandParser:
    parser = CommandParser(
        prog="multitask-bert export", description="Export a saved model to ONNX, check it, optionally quantize it."
    )
    parser.add_argument("model", help="folder (or Hub id) of a saved MultiTaskBert model with its tokenizer")
    parser.add_argument("--onnx", required=True, metavar="OUT_DIR", help="folder to write model.onnx and friends")
    parser.add_argument("--quantize", choices=["int8"], help="also write model_int8.onnx (dynamic quantization)")
    parser.add_argument(
        "--eval-file",
        metavar="FILE",
        help="texts (one per line), or JSONL with gold intent and entity spans, to compare int8 with fp32 on; "
        "default: the embedded dataset's test split (with its gold labels)",
    )
    parser.add_argument("--eval-limit", type=int, default=1000, help="compare on at most this many texts")
    parser.add_argument("--opset", type=int, help="ONNX opset (default: the exporter's recommended one)")
    parser.add_argument("--batch-size", type=int, default=32)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    eval_texts = eval_gold = None
    if args.quantize:
        examples = read_eval_examples(args.eval_file)[: args.eval_limit]
        eval_texts = [example["text"] for example in examples]
        if examples and all(set(example) - {"text"} for example in examples):  # JSONL with labels
            eval_gold = examples
    report = export_onnx(args.model, args.onnx, args.quantize, eval_texts, args.opset, args.batch_size, eval_gold)
    print(f"wrote {report.onnx_path}")
    print(f"onnxruntime vs PyTorch, max abs diff (limit {MAX_ABS_DIFF}):")
    for name, diff in report.max_abs_diff.items():
        print(f"  {name:<24} {diff:.2e}")
    if report.int8_path is not None:
        sizes = (
            f"{report.onnx_path.stat().st_size / 2**20:.1f} MiB -> {report.int8_path.stat().st_size / 2**20:.1f} MiB"
        )
        print(f"wrote {report.int8_path} ({sizes})")
        if report.int8_metrics:
            print(f"int8 vs fp32 on {len(eval_texts)} texts:")
            for name, value in report.int8_metrics.items():
                print(f"  {name:<24} {value:.4f}")
        else:
            print("int8 not compared with fp32: no evaluation texts (pass --eval-file).")
    return 0
