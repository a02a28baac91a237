"""The ceiling section of a comparison, from subset tables that `evaluate-subsets` wrote on any cases.

`compare --dedicated` reports the gap to the ceiling on the test cases. A candidate is chosen before
that, on validation cases, against the same ceiling: this renders the same section
(`nnunet_holder.compare.ceiling`: per covered subset the ceiling and every model, then per region
the gap and the share of the vanilla → ceiling and reference → ceiling gaps each model closes) from
`subset_table.json` files. Each compared model is given per seed (`--model NAME SEED TABLE`), the
vanilla model among them (evaluated on the source dataset, absent channels zero-filled), and each
dedicated model per subset and seed (`--dedicated SUBSET SEED TABLE`: its table's only subset is its
own full set). A TABLE is a `subset_table.json` or the folder holding one.

Example (the full command: docs/records/ceiling.md, "Three subsets per step"):
    python experiments/ceiling_tables.py --reference dropout --vanilla vanilla \\
        --model dropout 0 val/dropout_s0 --model vanilla 0 val/vanilla_s0 \\
        --model candidate 0 val/candidate_s0 --dedicated T1c 0 val/dedicated_T1c_s0 ...
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nnunet_holder.compare.ceiling import Ceiling, ceiling_markdown, ceiling_result
from nnunet_holder.compare.stats import metric_result
from nnunet_holder.evaluate.tables import Summary, load_summary
from nnunet_holder.file_names import SUBSET_TABLE


def _summary(path: str) -> Summary:
    table = Path(path)
    table = table / SUBSET_TABLE if table.is_dir() else table
    if not table.is_file():
        raise SystemExit(f"{path}: no {SUBSET_TABLE} there")
    return load_summary(table)


def _by_name_and_seed(triples: list[list[str]], what: str) -> dict[str, dict[int, Summary]]:
    out: dict[str, dict[int, Summary]] = {}
    for name, seed, path in triples:
        if not seed.isdigit():
            raise SystemExit(f"{what} {name}: the seed must be a whole number, not {seed!r}")
        if int(seed) in out.get(name, {}):
            raise SystemExit(f"{what} {name}: seed {seed} given twice")
        out.setdefault(name, {})[int(seed)] = _summary(path)
    return out


def ceiling_section(
    runs: dict[str, dict[int, Summary]],
    dedicated: dict[str, dict[int, Summary]],
    reference: str,
    vanilla: str,
) -> str:
    """The ceiling and gap tables of `compare --dedicated` for these evaluations."""
    for role, name in (("reference", reference), ("vanilla", vanilla)):
        if name not in runs:
            raise SystemExit(f"the {role} model {name} has no --model table")
    dice = metric_result(runs, reference)
    unknown = sorted(set(dedicated) - set(dice.order[:-1]))
    if unknown:
        raise SystemExit(f"dedicated subsets {unknown} are not among the models' subsets {dice.order[:-1]}")
    ceiling = Ceiling(trainer=vanilla, subsets=dedicated, datasets={})
    return ceiling_markdown(ceiling_result(ceiling, dice))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--model", nargs=3, action="append", required=True,
                        metavar=("NAME", "SEED", "TABLE"),
                        help="a compared model's evaluation of one seed (reference and vanilla among them)")
    parser.add_argument("--dedicated", nargs=3, action="append", required=True,
                        metavar=("SUBSET", "SEED", "TABLE"),
                        help="a dedicated model's evaluation, SUBSET named as in the models' tables (T1c+Fl)")
    parser.add_argument("--reference", required=True,
                        help="the model whose gap to the ceiling the others are measured against")
    parser.add_argument("--vanilla", required=True,
                        help="vanilla nnU-Net on all channels: the full set's ceiling")
    args = parser.parse_args(argv)
    runs = _by_name_and_seed(args.model, "--model")
    dedicated = _by_name_and_seed(args.dedicated, "--dedicated")
    print(ceiling_section(runs, dedicated, args.reference, args.vanilla))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
