"""docs/reference.md is generated from the code (`make reference`) and kept up to date.

The page is regenerated here and compared with the file, so a changed option, help text or
trainer attribute fails until the page is regenerated. The generator must cover every subcommand,
option and exported trainer, and its output must not depend on the machine: nnU-Net's variables,
the CPU count, the terminal width and the working folder change nothing, and no machine path
appears.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import pytest
from nnunet_holder.trainers import ALL_TRAINERS

from nnunet_holder import reference
from nnunet_holder.cli import build_parser

PAGE = Path(__file__).resolve().parents[1] / "docs" / "reference.md"


@pytest.fixture(scope="module")
def rendered() -> str:
    return reference.render()


def test_the_reference_page_is_up_to_date(rendered):
    assert PAGE.read_text() == rendered, "docs/reference.md is out of date: run `make reference`"


def test_every_subcommand_and_option_is_in_the_reference(rendered):
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(sub.choices) >= 10
    for name, parser in sub.choices.items():
        assert f"### nnunet-holder {name}\n" in rendered, name
        section = rendered.split(f"### nnunet-holder {name}\n")[1].split("\n### ")[0]
        for action in parser._actions:
            for option in action.option_strings or [action.dest]:
                if option not in ("-h", "--help"):
                    assert f"`{option}" in section, (name, option)


def test_every_exported_trainer_is_in_the_reference(rendered):
    for trainer in ALL_TRAINERS:
        assert f"`{trainer.__name__}`" in rendered, trainer.__name__
    # a trainer's own attributes and merged schedule are shown
    assert "| `lambda_mi` | `0.0` |" in rendered.split("### HolderMITrainer_noMI\n")[1].split("\n### ")[0]
    assert "`num_epochs` = `600`" in rendered.split("### HolderMITrainer_paper\n")[1].split("\n### ")[0]


def test_the_reference_does_not_depend_on_the_machine(rendered, monkeypatch, tmp_path):
    monkeypatch.setenv("nnUNet_npp", "17")
    monkeypatch.setenv("nnUNet_nps", "13")
    monkeypatch.setenv("nnUNet_def_n_proc", "11")
    monkeypatch.setenv("COLUMNS", "37")
    monkeypatch.setattr(os, "cpu_count", lambda: 97)
    monkeypatch.chdir(tmp_path)
    assert reference.render() == rendered
    assert os.environ["nnUNet_npp"] == "17"  # restored after the generator unset it
    assert not re.search(r"(/home/|/root/|/tmp/|/work/|/Users/|[A-Z]:\\\\)", rendered)
    assert str(Path(__file__).resolve().parents[1]) not in rendered
