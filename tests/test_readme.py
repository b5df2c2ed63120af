"""README's commands and usage example are the ones that work."""

from __future__ import annotations

import os
import re
import subprocess
import sys

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
