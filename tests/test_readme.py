"""The README's Python example prints exactly the output pasted under it."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_opens_with_the_two_commands():
    lines = README.read_text().splitlines()
    commands = [line.split("#")[0].strip() for line in lines[:4] if line.startswith("make ")]
    assert commands == ["make demo", "make test"]


def test_readme_example_output_is_current(tmp_path):
    text = README.read_text()
    match = re.search(r"```python\n(.*?)```\s*```\n(.*?)```", text, flags=re.S)
    assert match, "README has no ```python block followed by its output block"
    code, expected = match.groups()
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, timeout=600)
    assert res.returncode == 0, res.stderr
    assert res.stdout == expected
