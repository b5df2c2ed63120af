"""
Gradio demo of a multitask-bert model: every task's answer (intent, entities, ...) and the nearest examples of an
utterance.

    python app.py [MODEL] [--host HOST] [--port PORT]

MODEL is a Hub id or a saved folder (default: the `MODEL_ID` environment variable, else `./multitask-bert-model`,
the folder `multitask-bert train` writes). The model brings its own code (`trust_remote_code=True`), so this needs
only gradio, torch and transformers. The example bank is the embedded test split of `multitask_bert` when that
package is installed, else `examples.jsonl` next to this file.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import gradio as gr
import torch
from transformers import Pipeline, pipeline

DEFAULT_MODEL = "./multitask-bert-model"
EXAMPLES_FILE = Path(__file__).with_name("examples.jsonl")
NUM_NEIGHBOURS = 3
NUM_INTENTS_SHOWN = 3
ENTITY_COLORS = ["red", "green", "blue", "yellow", "purple", "orange", "cyan", "pink"]  # gradio theme colours
PROMPTS = [
    "remind me to call Anna at 5pm tomorrow",
    "set up a meeting with Carlos at the office on friday at 10",
    "cancel my dentist appointment next tuesday",
]


def load_example_bank() -> list[dict[str, str]]:
    """Labelled utterances (`{"text", "intent"}`) to search by embedding."""
    try:
        from multitask_bert.training.data import load_default_dataset
    except ImportError:
        lines = EXAMPLES_FILE.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]
    test_split = load_default_dataset()["test"]
    intent_names = test_split.features["intent"].names
    return [
        {"text": text, "intent": intent_names[intent]}
        for text, intent in zip(test_split["text"], test_split["intent"], strict=True)
    ]


class NluDemo:
    """Runs the `joint-intent-ner` pipeline on one text and finds the closest bank examples by cosine similarity."""

    def __init__(self, nlu: Pipeline, bank: list[dict[str, str]]):
        if not bank:
            raise ValueError("The example bank is empty.")
        config = nlu.model.config
        self.nlu = nlu
        self.bank = bank
        self.sentence_tasks = list(config.sentence_tasks)
        self.token_tasks = list(config.token_tasks)
        self.result_keys = {task: config.task_result_key(task) for task in self.token_tasks}
        results = nlu([example["text"] for example in bank], batch_size=32, return_embedding=True)
        embeddings = torch.tensor([result["sentence_embedding"] for result in results])
        self.bank_embeddings = torch.nn.functional.normalize(embeddings, dim=1)
        # Per token-level task, one colour per entity type, fixed in label order, so a type looks the same every time.
        self.entity_colors = {}
        for task in self.token_tasks:
            entity_types = dict.fromkeys(tag[2:] for tag in config.task_labels(task) if tag[:2] in ("B-", "I-"))
            self.entity_colors[task] = {
                entity_type: ENTITY_COLORS[index % len(ENTITY_COLORS)] for index, entity_type in enumerate(entity_types)
            }

    def predict(self, text: str) -> tuple:
        """Per sentence-level task its labels' scores (for `gr.Label`), per token-level task the text with its
        entities (for `gr.HighlightedText`), then the nearest bank examples."""
        if not text.strip():
            raise gr.Error("Type an utterance first.")
        result = self.nlu(text, top_k=NUM_INTENTS_SHOWN, return_embedding=True)
        labels = [{entry["label"]: entry["score"] for entry in result[task]} for task in self.sentence_tasks]
        highlighted = [
            {"text": result["text"], "entities": result[self.result_keys[task]]} for task in self.token_tasks
        ]
        query = torch.nn.functional.normalize(torch.tensor(result["sentence_embedding"]), dim=0)
        similarities, indices = (self.bank_embeddings @ query).topk(min(NUM_NEIGHBOURS, len(self.bank)))
        neighbours = [
            [round(similarity, 3), self.bank[index]["text"], self.bank[index]["intent"]]
            for similarity, index in zip(similarities.tolist(), indices.tolist(), strict=True)
        ]
        return (*labels, *highlighted, neighbours)


def build_app(demo: NluDemo, model_name: str) -> gr.Blocks:
    with gr.Blocks(title="multitask-bert", analytics_enabled=False) as app:
        gr.Markdown(
            "# multitask-bert\nOne encoder pass gives every task's answer and a sentence embedding "
            f"(used here to find the nearest of {len(demo.bank)} labelled examples). Model: `{model_name}`."
        )
        text = gr.Textbox(label="Utterance", placeholder="remind me to call Anna at 5pm tomorrow", elem_id="utterance")
        submit = gr.Button("Analyse", variant="primary", elem_id="analyse")
        with gr.Row():  # element ids as the pipeline's keys: `intent`, `entities`, other tasks' names
            outputs = [
                gr.Label(label=task.capitalize(), num_top_classes=NUM_INTENTS_SHOWN, elem_id=task)
                for task in demo.sentence_tasks
            ]
            outputs += [
                gr.HighlightedText(
                    label=demo.result_keys[task].capitalize(),
                    color_map=demo.entity_colors[task],
                    elem_id=demo.result_keys[task],
                )
                for task in demo.token_tasks
            ]
        neighbours = gr.Dataframe(
            headers=["cosine", "example", "intent"],
            datatype=["number", "str", "str"],
            label=f"Nearest {NUM_NEIGHBOURS} examples",
            interactive=False,
            wrap=True,
            elem_id="neighbours",
        )
        gr.Examples(PROMPTS, inputs=text)
        gr.on([text.submit, submit.click], demo.predict, inputs=text, outputs=[*outputs, neighbours])
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("model", nargs="?", default=os.environ.get("MODEL_ID", DEFAULT_MODEL), help="Hub id or folder")
    parser.add_argument("--host", help="address to serve on (default: gradio's, e.g. GRADIO_SERVER_NAME)")
    parser.add_argument("--port", type=int, help="port to serve on (default: gradio's, e.g. GRADIO_SERVER_PORT)")
    args = parser.parse_args(argv)
    nlu = pipeline(model=args.model, trust_remote_code=True)
    build_app(NluDemo(nlu, load_example_bank()), args.model).launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
