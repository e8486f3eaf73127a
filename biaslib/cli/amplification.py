"""``biaslib amplification …`` (``study`` before): the amplification study end to end, its power and its controls."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from biaslib.cli.arguments import (
    add_params,
    parse_overrides,
)
from biaslib.config import load_params
from biaslib.errors import BiaslibError


def cmd_study_run(args: argparse.Namespace) -> int:
    """Run export → generate → mix → train → eval for the experiment, or for each variant of the params file."""
    from biaslib.studies.amplification.pipeline import STEPS, run_study

    seconds = run_study(args.params, parse_overrides(args.set), steps=args.step or STEPS, variants=args.variant)
    print(json.dumps(seconds, indent=1))
    return 0


def _design(spec: str) -> tuple[str, tuple[int, list[float]]]:
    """``R:PARAMS_FILE`` or ``R:0,0.5,1`` → (label, (replicates, ratio fractions)) for ``study power``."""
    from biaslib.studies.amplification.dose_response import design_of

    replicates, _, ratios = spec.partition(":")
    if not replicates.isdigit() or int(replicates) < 1 or not ratios:
        raise BiaslibError(f"--design {spec!r}: expected R:PARAMS_FILE or R:RATIO,RATIO,… (e.g. 3:params/paper.yaml "
                           "or 5:0,0.5,1)")
    if ratios.endswith((".yaml", ".yml")):
        return f"{Path(ratios).stem} R={replicates}", design_of(load_params(ratios), int(replicates))
    return f"R={replicates} × {ratios}", (int(replicates), [float(r) for r in ratios.split(",")])


def cmd_study_power(args: argparse.Namespace) -> int:
    """Print the study's dose-response tests and the slope each design detects (Markdown; --out also writes it)."""
    from biaslib.io import write_text
    from biaslib.studies.amplification.dose_response import design_of, design_table, markdown_table, trend_findings
    from biaslib.studies.amplification.results import load_study

    study = load_study(args.params, parse_overrides(args.set))
    own = design_of(study.base)
    designs = dict([(f"this study R={own[0]}", own), *(_design(spec) for spec in args.design or [])])
    table = design_table(study, designs, k=args.k)
    columns = ["experiment", "measure", "slope", "ci_low", "ci_high", "p_value", "q_value", "called", "model_sd",
               "training_share", *(f"detectable {label}" for label in designs)]
    text = "\n".join([markdown_table(table[table["slope"].notna()], columns), "",
                      *(f"- {line}" for line in trend_findings(table))])
    print(text)
    if args.out:
        write_text(args.out, text + "\n")
    return 0


def cmd_study_control(args: argparse.Namespace) -> int:
    """Analyse the control of a params file: the declared primary test per pair, the secondary family, figures,
    findings (Markdown; --out also writes it)."""
    from biaslib.config import REPO_ROOT
    from biaslib.io import write_text
    from biaslib.studies.amplification.control_report import report_control

    designs = {}
    for spec in args.design or []:
        if spec.endswith((".yaml", ".yml")):
            replicates = load_params(spec).train.replicates
            designs[f"{Path(spec).stem} R={replicates}"] = replicates
        elif spec.isdigit() and int(spec) >= 2:
            designs[f"R={spec}"] = int(spec)
        else:
            raise BiaslibError(f"--design {spec!r}: expected a number of replicate pairs ≥ 2 (e.g. 5) or a params "
                               "file (its train.replicates)")
    report = report_control(args.params, parse_overrides(args.set),
                            figures_dir=args.figures_dir or REPO_ROOT / "figures", designs=designs,
                            amplification=not args.no_amplification)
    print(report["markdown"])
    if args.out:
        write_text(args.out, report["markdown"] + "\n")
    return 0


def add_commands(steps: argparse._SubParsersAction) -> None:
    """``biaslib amplification …``: the amplification study end to end (every variant of a params file)."""
    studyp = steps.add_parser("amplification", aliases=["study"],
                              help="the amplification study end to end (every variant of a params file)")
    study_actions = studyp.add_subparsers(dest="action", required=True)
    study_run = study_actions.add_parser("run", help="export, generate, mix, train, eval (finished work is skipped)")
    add_params(study_run)
    study_run.add_argument("--step", action="append", default=None,
                           help="export | generate | mix | train | eval (repeatable; default: all, in order)")
    study_run.add_argument("--variant", action="append", default=None,
                           help="only this variant of the params file (repeatable; default: every variant)")
    study_run.set_defaults(func=cmd_study_run)
    study_power = study_actions.add_parser(
        "power", help="dose-response tests of every headline measure and the slope a design detects (80%% power)")
    add_params(study_power)
    study_power.add_argument("--design", action="append", default=None,
                             help="another design, R:PARAMS_FILE (its ratios) or R:0,0.5,1, sized with this study's "
                                  "variances (repeatable)")
    study_power.add_argument("--k", type=int, default=1, help="retrieval cut-off of the gap measures (R@k)")
    study_power.add_argument("--out", type=Path, default=None, help="also write the Markdown here")
    study_power.set_defaults(func=cmd_study_power)
    study_control = study_actions.add_parser(
        "control", help="the paired controls of a params file with a control section: the declared primary test "
                        "per pair, the secondary family, figures and findings")
    add_params(study_control)
    study_control.add_argument("--design", action="append", default=None,
                               help="also size a paired design of R replicate pairs, or of a params file's "
                                    "train.replicates (repeatable), with this control's spread of a paired difference")
    study_control.add_argument("--figures-dir", type=Path, default=None, help="default: the repository's figures/")
    study_control.add_argument("--no-amplification", action="store_true",
                               help="leave out the generators' amplification against the real data")
    study_control.add_argument("--out", type=Path, default=None, help="also write the Markdown here")
    study_control.set_defaults(func=cmd_study_control)
