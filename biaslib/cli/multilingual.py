"""``biaslib multilingual …``: the multilingual debiasing study, step by step or end to end."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from biaslib.cli.arguments import (
    add_params,
    parse_overrides,
    positive_number,
)
from biaslib.config import load_params
from biaslib.studies.multilingual.layout import MultilingualLayout


def _multilingual_params(args: argparse.Namespace):
    """The params of a ``biaslib multilingual`` command, checked before any work."""
    from biaslib.studies.multilingual.pipeline import check_params

    params = load_params(args.params, parse_overrides(args.set))
    check_params(params)
    return params


def cmd_multilingual_generate(args: argparse.Namespace) -> int:
    """Write the prompt tables, then generate one image set per language (resumes finished shards)."""
    from biaslib.studies.multilingual.pipeline import generate_languages, write_prompts

    params = _multilingual_params(args)
    write_prompts(params)
    reports = generate_languages(params, args.what, args.language, overwrite=args.overwrite,
                                 max_items=args.max_items)
    print(json.dumps({code: {"done": True} if r is None else {"images": r.images, "stopped_early": r.stopped_early,
                                                               "images_per_s": round(r.images_per_s, 2)}
                      for code, r in reports.items()}))
    return 0


def cmd_multilingual_dataset(args: argparse.Namespace) -> int:
    """Collect the full and balanced imagefolders (metadata.jsonl) from the generated images."""
    from biaslib.studies.multilingual.pipeline import collect_datasets

    roots = collect_datasets(_multilingual_params(args), overwrite=args.overwrite)
    print(json.dumps({variant: json.loads((root / "manifest.json").read_text())["counts"]
                      for variant, root in roots.items()}))
    return 0


def cmd_multilingual_finetune(args: argparse.Namespace) -> int:
    """Fine-tune the base pipeline on the chosen dataset variant (resumes from the latest checkpoint)."""
    from biaslib.studies.multilingual.pipeline import run_finetune

    params = _multilingual_params(args)
    result = run_finetune(params, overwrite=args.overwrite)
    steps = None if result is None else result.global_step
    print(json.dumps({"output_dir": str(MultilingualLayout(params).finetuned), "global_step": steps,
                      "already_done": result is None}))
    return 0


def cmd_multilingual_run(args: argparse.Namespace) -> int:
    """Run the multilingual study's steps in order (finished work is skipped); prints seconds per step."""
    from biaslib.studies.multilingual.pipeline import STEPS, run_multilingual

    seconds = run_multilingual(_multilingual_params(args), args.step or STEPS, overwrite=args.overwrite)
    print(json.dumps(seconds, indent=1))
    return 0


def cmd_multilingual_eval(args: argparse.Namespace) -> int:
    """Evaluate the generated images per language: raw and classifier-corrected MAGBIG fairness, CLIP score,
    amplification against the world's data; writes one JSON per (generation, language); prints the fairness."""
    from biaslib.studies.multilingual.evaluation import (
        check_results,
        choose_clip,
        eval_settings,
        evaluate_multilingual,
        generation_confusion,
    )
    from biaslib.studies.multilingual.findings import multilingual_findings, multilingual_tests

    params = _multilingual_params(args)
    generations = list(params.multilingual.eval_models)
    confusion = {g: generation_confusion(params, g, source=args.confusion) for g in generations}
    clip = choose_clip(params, args.clip_checkpoint, args.clip_model)
    n_boot = params.multilingual.eval_n_boot if args.n_boot is None else args.n_boot
    check_results(params, generations, None, eval_settings(params, n_boot=n_boot, seed=params.seed, clip=clip),
                  overwrite=args.overwrite)  # before the confusion and the labels
    tables = evaluate_multilingual(params, generations, confusion=confusion, clip=clip, n_boot=n_boot,
                                   seed=params.seed, overwrite=args.overwrite)
    fairness = tables["fairness"]
    print(fairness[fairness["metric"].isin(["share_woman", "mean_l1"])].to_string(index=False))
    tests = multilingual_tests(fairness, tables["finetune_change"], tables["language_gaps"])
    print("\n".join(multilingual_findings(tests, tables["amplification"])))
    return 0


def cmd_multilingual_findings(args: argparse.Namespace) -> int:
    """Print the findings of the written multilingual results (tests with BH q-values; nothing is evaluated)."""
    from biaslib.errors import DataLayoutError
    from biaslib.results import collect
    from biaslib.studies.multilingual.findings import findings_of_results

    params = _multilingual_params(args)
    collected = collect(params, study="multilingual")
    if collected.empty:
        raise DataLayoutError(f"no multilingual results under {MultilingualLayout(params).multilingual_results}; "
                              f"run `biaslib multilingual eval --params {args.params}` first")
    print("\n".join(findings_of_results(collected)[1]))
    return 0


def cmd_multilingual_figures(args: argparse.Namespace) -> int:
    """Draw the multilingual study's figures from its written results (notebook 13's figures; nothing is
    evaluated)."""
    from biaslib.config import REPO_ROOT
    from biaslib.errors import DataLayoutError
    from biaslib.results import collect
    from biaslib.studies.multilingual.figures import save_multilingual_figures
    from biaslib.studies.multilingual.findings import result_tables

    params = _multilingual_params(args)
    collected = collect(params, study="multilingual")
    if collected.empty:
        raise DataLayoutError(f"no multilingual results under {MultilingualLayout(params).multilingual_results}; "
                              f"run `biaslib multilingual eval --params {args.params}` first")
    written = save_multilingual_figures(result_tables(collected), params.experiment,
                                        args.figures_dir or REPO_ROOT / "figures")
    print(json.dumps({"figures": [str(p) for p in written if p.suffix == ".png"]}))
    return 0


def add_commands(steps: argparse._SubParsersAction) -> None:
    """``biaslib multilingual …``: the multilingual gender-bias study (prompts → fine-tuning)."""
    mlp = steps.add_parser("multilingual", help="the multilingual gender-bias study (prompts → fine-tuning)")
    ml_actions = mlp.add_subparsers(dest="action", required=True)
    for action, func, text in (
            ("generate", cmd_multilingual_generate, "generate per language (data, base or finetuned model)"),
            ("dataset", cmd_multilingual_dataset, "write the full and balanced imagefolders"),
            ("finetune", cmd_multilingual_finetune, "fine-tune the base pipeline (resumes)"),
            ("run", cmd_multilingual_run, "prompts, generate, dataset, finetune, generate_eval (skips finished work)"),
            ("eval", cmd_multilingual_eval, "fairness (raw and corrected), CLIP score and amplification per language"),
            ("findings", cmd_multilingual_findings, "findings of the written results (BH q-values; no evaluation)"),
            ("figures", cmd_multilingual_figures, "the study's figures from the written results (no evaluation)")):
        sub = ml_actions.add_parser(action, help=text)
        add_params(sub)
        if action not in ("findings", "figures"):  # these only read
            sub.add_argument("--overwrite", action="store_true", help="replace outputs made with other settings")
        sub.set_defaults(func=func)
        if action == "generate":
            sub.add_argument("--what", default="data", choices=["data", "base", "finetuned"],
                             help="data: the dataset's images; base/finetuned: the evaluation images")
            sub.add_argument("--language", action="append", default=None,
                             help="en | de | zh | ja or the MAGBIG name (repeatable; default: all the set needs)")
            sub.add_argument("--max-items", type=positive_number(int), default=None,
                             help="stop each language after this many images (resumable)")
        if action == "eval":
            sub.add_argument("--confusion", default="renders", choices=["renders", "stated"],
                             help="classifier error measured on world renders of known gender (default) or on the "
                                  "pipeline's images of gender-stating prompts")
            sub.add_argument("--clip-checkpoint", default=None,
                             help="open_clip checkpoint for the CLIP score (default: multilingual.clip_params' CLIP at "
                                  "clip_ratio)")
            sub.add_argument("--clip-model", default=None, help="its open_clip model name (with --clip-checkpoint)")
            sub.add_argument("--n-boot", type=int, default=None,
                             help="bootstrap draws for every CI (default: the params' multilingual.eval_n_boot)")
        if action == "figures":
            sub.add_argument("--figures-dir", type=Path, default=None, help="output folder (default: <repo>/figures)")
        if action == "run":
            sub.add_argument("--step", action="append", default=None,
                             help="prompts | generate | dataset | finetune | generate_eval (repeatable; default: all)")
