"""The front page cannot rot: every command in a fenced `bash` block of README.md and of the user
guide is checked against the argument parser of the program it calls (our `nnunet-holder`
subcommands and nnU-Net's own `nnUNetv2_*` entry points, found through their console-script entry
points), and every trainer it names with `-tr` is found by nnU-Net's lookup.

Only the parsing runs: `argparse.ArgumentParser.parse_args` is wrapped to stop right after a
successful parse, so no command does its work. A misspelt option, a removed flag or a renamed
trainer fails here with the file and the command.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs" / "guide").glob("*.md"))]
SUBSTITUTIONS = {
    "$(nnunet-holder trainer-path)": "/tmp/trainers",
    "$nnUNet_raw": "/tmp/nnUNet_raw",
    "\"$@\"": "",  # a job script's extra arguments
}
NOT_CHECKED = {"export", "make", "pip", "cat", "watch", "sbatch", "array=$(sbatch", "#!/bin/bash"}
"""Shell built-ins and other programs: their syntax is not ours to check."""


class _Parsed(Exception):
    def __init__(self, namespace: argparse.Namespace) -> None:
        self.namespace = namespace


def fenced_commands(page: Path) -> list[str]:
    """The command lines of the page's ```bash blocks: continuation lines joined, comments and
    blank lines dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", page.read_text(), flags=re.S):
        text = re.sub(r"\\\n\s*", " ", block)
        for line in text.splitlines():
            line = line.split(" # ")[0].strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def _words(command: str) -> list[str]:
    for pattern, value in SUBSTITUTIONS.items():
        command = command.replace(pattern, value)
    words = shlex.split(command)
    while words and re.fullmatch(r"\w+=\S*", words[0]):  # VAR=value prefixes
        words.pop(0)
    return words


def _parse(words: list[str], monkeypatch: pytest.MonkeyPatch) -> argparse.Namespace:
    """Run the program's entry point with `words` as its argv until its parser has parsed them."""
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == words[0]]
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        raise _Parsed(original(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    monkeypatch.setattr(sys, "argv", words)
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            script.load()()
    except _Parsed as parsed:
        return parsed.namespace
    except SystemExit as e:
        raise AssertionError(f"{' '.join(words)}: the parser refused it: {stderr.getvalue().strip()}") from e
    raise AssertionError(f"{' '.join(words)}: the program returned without parsing arguments")


def _cases() -> list[tuple[str, str]]:
    cases = []
    for page in PAGES:
        for command in fenced_commands(page):
            if shlex.split(command)[0] not in NOT_CHECKED and not command.startswith(tuple(NOT_CHECKED)):
                cases.append((page.relative_to(REPO).as_posix(), command))
    return cases


def test_the_readme_quickstart_covers_the_five_tasks():
    programs = [_words(c)[:2] for c in fenced_commands(REPO / "README.md")]
    for task in (["nnunet-holder", "convert-brats"], ["nnUNetv2_plan_and_preprocess"], ["nnUNetv2_train"],
                 ["nnunet-holder", "predict"], ["nnunet-holder", "evaluate-subsets"]):
        assert any(p[: len(task)] == task for p in programs), f"README's quickstart lacks {' '.join(task)}"


@pytest.mark.parametrize("page,command", _cases(), ids=lambda v: v if "/" in v or v.endswith(".md") else None)
def test_documented_command_parses(page, command, monkeypatch):
    words = _words(command)
    namespace = _parse(words, monkeypatch)
    options = ("tr", "trainer", "reference", "dedicated_trainer")
    trainers = [getattr(namespace, a) for a in options if getattr(namespace, a, None)]
    names = [n for t in trainers for n in ([t] if isinstance(t, str) else t)]
    if names:
        from nnunet_holder.compare.lookup import resolve_trainers
        from nnunet_holder.trainer_path import trainer_path

        resolve_trainers(names, {"nnUNet_extTrainer": str(trainer_path())})


def test_a_wrong_option_is_caught(monkeypatch):
    with pytest.raises(AssertionError, match="--no-such-option"):
        _parse(["nnunet-holder", "predict", "-i", "a", "-o", "b", "-d", "1", "--no-such-option"], monkeypatch)
    with pytest.raises(AssertionError, match="refused"):
        _parse(["nnUNetv2_train", "137", "3d_fullres", "0", "--no-such-option"], monkeypatch)
