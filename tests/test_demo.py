"""The Gradio demo (`demo/app.py`): its prediction function, its example bank and Space metadata, and the app served
on 127.0.0.1 and driven in headless Chromium."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch
from transformers import pipeline

from conftest import INTENTS, NER_TAGS, REPO_ROOT, tiny_model
from multitask_bert.training.data import load_default_dataset

gr = pytest.importorskip("gradio", reason="the demo needs gradio: pip install -e '.[demo]'")

DEMO_DIR = REPO_ROOT / "demo"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # nothing but the app is reachable
    "--window-size=1280,1000",
]
# The tiny model's heads are fitted to tag and classify these exactly (words, BIO tags, intent).
FITTED = [
    ("wake Anna up at 7 am", "O B-PERSON O O B-TIME I-TIME", "set_alarm"),
    ("set a timer for 10 minutes", "O O O O B-TIME I-TIME", "set_timer"),
    ("cancel lunch with Bob", "O O O B-PERSON", "cancel_event"),
]
UTTERANCE, UTTERANCE_TAGS, UTTERANCE_INTENT = FITTED[0]


def load_app_module():
    spec = importlib.util.spec_from_file_location("demo_app", DEMO_DIR / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


app = load_app_module()


def fitted_tiny_model(tokenizer):
    """conftest's tiny random model with its heads (not the encoder) fitted to the FITTED utterances."""
    model = tiny_model()
    batch = tokenizer(
        [text.split() for text, _, _ in FITTED], is_split_into_words=True, padding=True, return_tensors="pt"
    )
    ner_labels = torch.full(batch["input_ids"].shape, -100)
    for row, (_, tags, _) in enumerate(FITTED):
        word_ids = batch.word_ids(row)
        for position, word_id in enumerate(word_ids):
            if word_id is not None and (position == 0 or word_ids[position - 1] != word_id):
                ner_labels[row, position] = NER_TAGS.index(tags.split()[word_id])
    intent_labels = torch.tensor([INTENTS.index(intent) for _, _, intent in FITTED])
    with torch.no_grad():
        token_states = model.backbone(**batch).last_hidden_state
        pooled = model.pooling(token_states, batch["attention_mask"])
    optimizer = torch.optim.Adam(model.heads.parameters(), lr=0.1)
    for _ in range(100):
        optimizer.zero_grad()
        ner_loss = torch.nn.functional.cross_entropy(
            model.heads["ner"](token_states).flatten(0, 1), ner_labels.flatten()
        )
        intent_loss = torch.nn.functional.cross_entropy(model.heads["intent"](pooled), intent_labels)
        (ner_loss + intent_loss).backward()
        optimizer.step()
    return model


@pytest.fixture(scope="module")
def nlu(tokenizer):
    nlu = pipeline("joint-intent-ner", model=fitted_tiny_model(tokenizer), tokenizer=tokenizer)
    for text, tags, intent in FITTED:  # the fit worked, so the checks below see real entities
        result = nlu(text)
        assert result["intent"]["label"] == intent
        expected_entities = [word for word, tag in zip(text.split(), tags.split(), strict=True) if tag.startswith("B")]
        assert [entity["word"].split()[0] for entity in result["entities"]] == expected_entities, result
    return nlu


@pytest.fixture(scope="module")
def shipped_bank():
    return [json.loads(line) for line in (DEMO_DIR / "examples.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def nlu_demo(nlu, shipped_bank):
    return app.NluDemo(nlu, shipped_bank)


def test_predict_shows_the_pipeline_output(nlu, nlu_demo):
    intents, highlighted, _ = nlu_demo.predict(UTTERANCE)
    top_intents = nlu(UTTERANCE, top_k=app.NUM_INTENTS_SHOWN)["intent"]
    assert intents == {entry["label"]: entry["score"] for entry in top_intents}
    assert max(intents, key=intents.get) == UTTERANCE_INTENT
    assert highlighted == {"text": UTTERANCE, "entities": nlu(UTTERANCE)["entities"]}
    # What gradio renders: the text cut at the entities' character spans, each entity labelled with its type.
    pieces = [
        (piece["token"], piece["class_or_confidence"])
        for piece in gr.HighlightedText().postprocess(highlighted).model_dump()
    ]
    assert "".join(text for text, _ in pieces) == UTTERANCE
    assert [(text, label) for text, label in pieces if label] == [("Anna", "PERSON"), ("7 am", "TIME")]
    assert list(nlu_demo.entity_colors["ner"]) == ["TIME", "PERSON"]  # one colour per type, in label order
    assert len(set(nlu_demo.entity_colors["ner"].values())) == 2


def test_nearest_examples_by_cosine(nlu, nlu_demo, shipped_bank):
    query = shipped_bank[5]
    _, _, neighbours = nlu_demo.predict(query["text"])
    assert len(neighbours) == app.NUM_NEIGHBOURS
    assert neighbours[0][1:] == [query["text"], query["intent"]] and neighbours[0][0] == pytest.approx(1.0, abs=1e-3)

    texts = [example["text"] for example in shipped_bank]
    embeddings = torch.tensor([result["sentence_embedding"] for result in nlu(texts, return_embedding=True)])
    cosines = torch.nn.functional.cosine_similarity(embeddings[5:6], embeddings).tolist()
    ranked = sorted(range(len(texts)), key=lambda index: cosines[index], reverse=True)[: app.NUM_NEIGHBOURS]
    assert [row[1] for row in neighbours] == [texts[index] for index in ranked]
    assert [row[2] for row in neighbours] == [shipped_bank[index]["intent"] for index in ranked]
    assert [row[0] for row in neighbours] == pytest.approx([cosines[index] for index in ranked], abs=1e-3)


def test_blank_text_is_refused(nlu_demo):
    with pytest.raises(gr.Error, match="Type an utterance"):
        nlu_demo.predict("  ")


def test_an_out_of_scope_answer_is_shown_first(tokenizer, shipped_bank):
    model = tiny_model()
    model.set_out_of_scope("intent", "out_of_scope", "msp", 0.0)  # every text is out of scope
    demo = app.NluDemo(pipeline("joint-intent-ner", model=model, tokenizer=tokenizer), shipped_bank[:4])
    intents, _, _ = demo.predict(UTTERANCE)
    assert list(intents)[0] == "out_of_scope" and len(intents) == app.NUM_INTENTS_SHOWN
    assert intents["out_of_scope"] == pytest.approx(
        1 - max(score for label, score in intents.items() if label in INTENTS)
    )


def test_every_task_has_its_output(tokenizer, shipped_bank):
    tasks = {
        "intent": {"level": "sentence", "labels": INTENTS},
        "topic": {"level": "sentence", "labels": ["work", "home"]},
        "ner": {"level": "token", "labels": NER_TAGS},
        "acts": {"level": "token", "labels": ["O", "B-ASK", "I-ASK"]},
    }
    nlu = pipeline("joint-intent-ner", model=tiny_model(tasks=tasks), tokenizer=tokenizer)
    demo = app.NluDemo(nlu, shipped_bank[:4])
    intents, topics, entities, acts, neighbours = demo.predict(UTTERANCE)
    expected = nlu(UTTERANCE, top_k=app.NUM_INTENTS_SHOWN)
    assert topics == {entry["label"]: entry["score"] for entry in expected["topic"]}
    assert intents == {entry["label"]: entry["score"] for entry in expected["intent"]}
    assert entities == {"text": UTTERANCE, "entities": expected["entities"]}
    assert acts == {"text": UTTERANCE, "entities": expected["acts"]}
    assert list(demo.entity_colors["acts"]) == ["ASK"] and len(neighbours) == app.NUM_NEIGHBOURS
    components = app.build_app(demo, "tiny").blocks.values()
    shown = {component.elem_id: type(component).__name__ for component in components if component.elem_id}
    assert {key: shown[key] for key in ("intent", "topic", "entities", "acts")} == {
        "intent": "Label",
        "topic": "Label",
        "entities": "HighlightedText",
        "acts": "HighlightedText",
    }


def test_example_bank_is_the_embedded_test_split_else_the_shipped_file(monkeypatch, shipped_bank):
    test_split = load_default_dataset()["test"]
    intent_names = test_split.features["intent"].names
    bank = app.load_example_bank()
    assert [example["text"] for example in bank] == test_split["text"]
    assert [example["intent"] for example in bank] == [intent_names[intent] for intent in test_split["intent"]]

    monkeypatch.setitem(sys.modules, "multitask_bert.training.data", None)  # as on a Space: the package is absent
    assert app.load_example_bank() == shipped_bank
    assert {example["intent"] for example in shipped_bank} == set(intent_names) - {"UNK"}
    assert all(example["text"].strip() for example in shipped_bank)


def test_space_metadata():
    from huggingface_hub import SpaceCard

    card = SpaceCard.load(DEMO_DIR / "README.md")
    assert card.data.sdk == "gradio" and (DEMO_DIR / card.data.app_file).is_file()
    assert card.data.sdk_version.split(".")[0] == gr.__version__.split(".")[0]
    assert len(card.data.short_description) <= 60  # the Hub's limit
    requirements = (DEMO_DIR / "requirements.txt").read_text()
    assert "torch" in requirements and "transformers" in requirements


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def served_app(tmp_path, nlu):
    """`python demo/app.py MODEL_DIR` on 127.0.0.1 in a subprocess, as a user starts it; yields its URL."""
    model_dir = tmp_path / "model"
    nlu.model.save_pretrained(model_dir)
    nlu.tokenizer.save_pretrained(model_dir)
    port = free_port()
    env = {
        **os.environ,
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        "HF_MODULES_CACHE": str(tmp_path / "hf_modules"),
        "OMP_NUM_THREADS": "1",  # a tiny model: threads only add contention on a shared CPU
    }
    log_path = tmp_path / "app.log"
    command = [sys.executable, str(DEMO_DIR / "app.py"), str(model_dir), "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"the app exited with {process.returncode}:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"the app did not serve {url} within 60 s:\n{log_path.read_text()}"
            try:
                no_proxy.open(url, timeout=2).close()
                break
            except OSError:
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def browser(tmp_path):
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="the browser test drives Chromium with selenium: pip install -e '.[demo]'"
    )
    from selenium.webdriver.chrome.service import Service

    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.is_file()]
    if missing:
        pytest.skip(f"the browser test needs {' and '.join(missing)}: apt-get install -y chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)  # a path: no Selenium Manager
    yield driver
    driver.quit()


def test_app_in_headless_chromium(browser, served_app, nlu, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    expected = nlu(UTTERANCE)
    bank_texts = {example["text"] for example in app.load_example_bank()}
    browser.get(served_app)
    wait = WebDriverWait(browser, 30)
    textbox = wait.until(lambda driver: driver.find_element(By.CSS_SELECTOR, "#utterance textarea"))
    textbox.send_keys(UTTERANCE + Keys.ENTER)

    highlighted = wait.until(lambda driver: driver.find_elements(By.CSS_SELECTOR, "#entities .token.highlighted"))
    shown = [
        (token.find_element(By.CSS_SELECTOR, ".text").text, token.find_element(By.CSS_SELECTOR, ".label").text)
        for token in highlighted
    ]
    assert shown == [(entity["word"], entity["entity_group"]) for entity in expected["entities"]]
    pieces = browser.find_elements(By.CSS_SELECTOR, "#entities .token .text")
    assert "".join(piece.get_attribute("textContent") for piece in pieces) == UTTERANCE
    top_intent = browser.find_element(By.CSS_SELECTOR, "#intent [data-testid=label-output-value]").text
    assert top_intent == expected["intent"]["label"]

    rows = [
        [
            browser.find_element(By.CSS_SELECTOR, f"#neighbours [data-testid=cell-{row}-{column}]").text
            for column in range(3)
        ]
        for row in range(app.NUM_NEIGHBOURS)
    ]
    assert {example for _, example, _ in rows} <= bank_texts
    cosines = [float(cosine) for cosine, _, _ in rows]
    assert cosines == sorted(cosines, reverse=True)

    screenshot = tmp_path / "demo.png"
    assert browser.save_screenshot(str(screenshot))
    shutil.copy(screenshot, "/tmp/demo.png")
    print(f"screenshot: {screenshot} (copied to /tmp/demo.png)")
