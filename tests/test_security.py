"""What we publish is safe to run: the remote-code files, the weight format and every `torch.load`."""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, run_without_project, tiny_model

# The only standard-library modules the remote code may use: none of them reads files or talks to the network by
# itself (importlib.util.find_spec only locates the optional default-backbone package).
# `json` only (de)serialises: the sentence-transformers files that `save_pretrained` writes and `from_backbone` reads.
ALLOWED_STDLIB = {"__future__", "dataclasses", "inspect", "importlib", "itertools", "json", "math", "pathlib", "typing"}
ALLOWED_THIRD_PARTY = {"torch", "transformers"}
FORBIDDEN_CALLS = {"open", "exec", "eval", "compile", "__import__", "input", "breakpoint"}


@pytest.fixture(scope="module")
def shipped_files(tmp_path_factory, tokenizer) -> dict:
    """The .py files `save_pretrained` writes next to the weights: exactly what `trust_remote_code` runs."""
    model_dir = tmp_path_factory.mktemp("model")
    tiny_model().save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    return {path.name: path for path in model_dir.glob("*.py")} | {"_dir": model_dir}


def imported_modules(tree: ast.AST) -> set[str]:
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            modules.add(node.module.split(".")[0])
    return modules


def test_remote_code_imports_only_torch_transformers_and_stdlib(shipped_files):
    files = {name: path for name, path in shipped_files.items() if name != "_dir"}
    assert "modeling_multitask_bert.py" in files
    for name, path in files.items():
        tree = ast.parse(path.read_text(), filename=name)
        modules = imported_modules(tree)
        assert modules <= ALLOWED_STDLIB | ALLOWED_THIRD_PARTY, f"{name} imports {modules - ALLOWED_STDLIB}"
        assert all(module in sys.stdlib_module_names for module in modules - ALLOWED_THIRD_PARTY)
        calls = {
            node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        }
        assert not calls & FORBIDDEN_CALLS, f"{name} calls {calls & FORBIDDEN_CALLS}"


def test_remote_code_does_no_io_or_network_at_import_or_forward(shipped_files, tmp_path):
    """An audit hook records every file open, socket and process the remote code causes while importing and running."""
    model_dir = shipped_files["_dir"]
    result = run_without_project(
        f"""
        import sys, json
        import torch
        from transformers import AutoModel, AutoTokenizer

        model_dir = {str(model_dir)!r}
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        batch = tokenizer(["call Anna at 5pm"], return_tensors="pt")
        # Load (this copies the files into the module cache: I/O by transformers, not by our code) ...
        model = AutoModel.from_pretrained(model_dir, trust_remote_code=True).eval()
        module_names = [name for name in sys.modules if name.startswith("transformers_modules.")]
        for name in module_names:
            del sys.modules[name]

        events = []
        watched = ("open", "socket.", "subprocess.", "os.system", "os.exec", "urllib.", "http.")
        def hook(event, args):
            if event.startswith(watched):
                events.append((event, repr(args)[:200]))
        sys.addaudithook(hook)
        # ... then import the cached remote code afresh and run forward under the hook.
        import importlib
        for name in module_names:
            importlib.import_module(name)
        with torch.no_grad():
            model(**batch)
        print("EVENTS", json.dumps(events))
        """,
        tmp_path,
    )
    events = json.loads(result.stdout.split("EVENTS", 1)[1])
    source_reads = [event for event in events if not re.search(r"\.pyc?'|__pycache__", event[1])]
    assert source_reads == [], source_reads


def test_weights_are_safetensors_only(shipped_files):
    names = {path.name for path in shipped_files["_dir"].iterdir()}
    assert "model.safetensors" in names
    assert not {name for name in names if name.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt"))}


def test_every_torch_load_is_weights_only():
    for path in REPO_ROOT.rglob("*.py"):
        if ".git" in path.parts or path == Path(__file__):
            continue
        for call in re.findall(r"torch\.load\(([^)]*)\)", path.read_text()):
            assert "weights_only=True" in call, f"{path}: torch.load({call})"
