"""README's commands and usage example are the ones that work."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.metadata import requires

from conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_usage_example_runs_as_written(tmp_path):
    example = code_blocks("python")[0]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    result = subprocess.run(
        [sys.executable, "-c", example], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "torch.Size([1, 384]) torch.Size([1, 2])" in result.stdout


def test_ci_runs_the_readme_test_command():
    test_command = next(block.strip() for block in code_blocks("bash") if "pytest" in block)
    assert test_command in (REPO_ROOT / ".ci" / "run").read_text()


def packages_of_extras(extras: set[str]) -> set[str]:
    """Names of the packages that `multitask-bert[extras]` installs beyond the core, following nested extras."""
    names: set[str] = set()
    for requirement in requires("multitask-bert") or []:
        match = re.fullmatch(r"([\w.-]+)(?:\[([\w,]+)\])?[^;]*; extra == \"(\w+)\"", requirement)
        if match and match.group(3) in extras:
            name, nested = match.group(1), match.group(2)
            names |= packages_of_extras(set(nested.split(","))) if name == "multitask-bert" else {name}
    return names


def test_readme_test_command_installs_the_optional_packages_the_tests_use():
    """The extras of README's test command bring onnx, onnxruntime, gradio and selenium (tests import them)."""
    test_command = next(block.strip() for block in code_blocks("bash") if "pytest" in block)
    extras = set(re.search(r'"\.\[([\w,]+)\]"', test_command).group(1).split(","))
    installed = packages_of_extras(extras)
    assert {"onnx", "onnxruntime", "onnxscript", "gradio", "selenium", "pytest", "hypothesis"} <= installed, installed


def test_ci_runs_in_a_fresh_virtual_environment_and_fails_when_no_test_runs():
    script = (REPO_ROOT / ".ci" / "run").read_text()
    assert re.search(r"python3? -m venv \"\$env_dir", script) and "mktemp -d" in script
    assert re.search(r"source \"\$env_dir/venv/bin/activate\"", script)
    result = subprocess.run(["bash", "-n", str(REPO_ROOT / ".ci" / "run")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert '"$status" -eq 5' in script and "exit 1" in script
