"""The README's Python code blocks run as written (STYLE.md test 10)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    blocks = python_blocks()
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:  # later blocks may use names from earlier ones, as a reader would
        exec(compile(block, str(README), "exec"), namespace)


def test_readme_leads_with_the_two_setup_commands():
    text = README.read_text()
    setup = text[text.index("## Set up"):text.index("## Python quickstart")]
    commands = re.findall(r"^pip install .*$", setup, flags=re.M)
    assert commands == ['pip install -c constraints.txt -e ".[apps]" && vaekit train digits --out runs/digits',
                        'pip install -c constraints.txt -e ".[apps,test]" && python -m pytest -q']
    ci = (README.parent / ".ci" / "run").read_text()
    assert commands[1] in ci


def test_every_public_name_resolves():
    import types

    import vaekit

    for name in vaekit.__all__:
        value = getattr(vaekit, name)
        assert callable(value) or isinstance(value, (types.ModuleType, str)), name
    assert isinstance(vaekit.evaluate, types.ModuleType)
