"""Command line: ``biaslib <step> <action> [options]``, one subcommand per pipeline step.

Each subcommand parses arguments and calls the library; notebooks call the same functions. Run
``biaslib --help`` for the list. Errors biaslib raises on purpose (bad params, missing data, invalid
values: ``BiaslibError`` and ``ValueError``) print one line and exit with status 2 instead of a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from biaslib import __version__
from biaslib.config import load_params
from biaslib.errors import BiaslibError
from biaslib.evaluations import list_evaluations
from biaslib.layout import RunLayout


def _add_params(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", type=Path, default=None,
                        help="params YAML (default: params/default.yaml)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a parameter, e.g. --set world.bias_strength=0 (repeatable)")


def _add_ratios(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ratio", action="append", default=None, type=_ratio_argument,
                        help="ratio as 20, 0.2 or 020 (repeatable; default: the params' list; the ambiguous 1 is "
                             "refused: 001 = 1 %%, 1.0 = 100 %%)")


def _positive(kind: type) -> object:
    """argparse type: a number of ``kind`` (int or float) above 0, else a usage error naming the value."""
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def _ratio_argument(text: str) -> str:
    """argparse type of ``--ratio``: its 3-digit code (:func:`biaslib.ratios.written_ratio`)."""
    from biaslib.ratios import written_ratio

    try:
        return written_ratio(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _value(text: str) -> object:
    """A command-line value: JSON when it parses (numbers, true/false, null, lists), else the string.

    (Not YAML: YAML 1.1 would read ``no`` as false and ``020`` as an octal number.)
    """
    try:
        return json.loads(text)
    except ValueError:
        return text


def _overrides(pairs: list[str]) -> dict[str, object]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise BiaslibError(f"expected KEY=VALUE, got {pair!r}")
        out[key] = _value(value)
    return out


def cmd_world_export(args: argparse.Namespace) -> int:
    """Write the synthetic world in every real dataset format."""
    from biaslib.world import World
    from biaslib.world.export import export_all

    params = load_params(args.params, _overrides(args.set))
    out = args.out or RunLayout(params).data
    start = time.perf_counter()
    roots = export_all(World(params.world, params.seed), out, params.export, overwrite=args.overwrite)
    summary = {"out": str(out), "datasets": {k: str(v) for k, v in roots.items()},
               "seconds": round(time.perf_counter() - start, 1), "params_digest": params.digest()}
    print(json.dumps(summary, indent=1))
    return 0


def cmd_world_tables(args: argparse.Namespace) -> int:
    """Print the world's tabled conditionals at the params' bias strength."""
    from biaslib.world import World

    params = load_params(args.params, _overrides(args.set))
    for name, table in World(params.world, params.seed).conditionals().items():
        print(f"# p({name} | occupation), bias_strength={params.world.bias_strength}")
        print(table.round(3).to_string(), end="\n\n")
    return 0


def cmd_generate_run(args: argparse.Namespace) -> int:
    """Generate one image per caption into webdataset shards (this process's rank share)."""
    from biaslib.generate import generate_run

    params = load_params(args.params, _overrides(args.set))
    report = generate_run(params, args.name, captions=args.captions, out=args.out, max_items=args.max_items,
                          overwrite=args.overwrite, rank=args.rank, world_size=args.world_size)
    print(json.dumps({"out": str(report.out_dir), "rank": report.rank, "world_size": report.world_size,
                      "images": report.images, "kept": report.kept, "discarded_unfinished": report.discarded,
                      "images_per_s": round(report.images_per_s, 2),
                      "shards_done": len(report.shards_done), "shards_skipped": len(report.shards_skipped),
                      "stopped_early": report.stopped_early, "skipped_empty_captions": len(report.skipped_empty)}))
    return 0


def cmd_generate_verify(args: argparse.Namespace) -> int:
    """Check that every caption id was generated exactly once."""
    from biaslib.generate import read_captions, run_paths, verify

    params = load_params(args.params, _overrides(args.set))
    captions_path, out = run_paths(params, args.name, args.captions, args.out)
    check = verify(out, read_captions(captions_path))
    print(check.summary())
    return 0 if check.ok else 1


def cmd_mix_run(args: argparse.Namespace) -> int:
    """Write the mixed datasets at every ratio (or --ratio ones)."""
    from biaslib.mix import mix_run

    params = load_params(args.params, _overrides(args.set))
    layout = RunLayout(params)
    for manifest in mix_run(params, args.ratio, overwrite=args.overwrite).values():
        print(json.dumps({"ratio": manifest["ratio"], "out": str(layout.mix(manifest["ratio"])),
                          "n": manifest["n"], "counts": manifest["counts"], "shortfall": manifest["shortfall"],
                          "skipped_real": manifest["skipped_real"]["samples"]}))
    return 0


def cmd_mix_verify(args: argparse.Namespace) -> int:
    """Verify mixed datasets against their manifests."""
    from biaslib.mix import verify
    from biaslib.ratios import ratio_code

    params = load_params(args.params, _overrides(args.set))
    ok = True
    for ratio in args.ratio or params.mix.ratios:
        report = verify(RunLayout(params).mix(ratio), params.mix.allow_skipped_real)
        ok &= report.ok
        print(f"mix_{ratio_code(ratio)}: {'OK' if report.ok else 'FAILED'} {report.counts}")
        for problem in report.problems:
            print("  -", problem)
    return 0 if ok else 1


def cmd_world_train_pipeline(args: argparse.Namespace) -> int:
    """Train (or reuse) the world's tiny diffusion pipeline with biaslib.finetune."""
    from biaslib.world import World
    from biaslib.world_models.tiny_pipeline_training import train_world_pipeline

    params = load_params(args.params, _overrides(args.set))
    out = args.out or RunLayout(params).tiny_pipeline
    path = train_world_pipeline(World(params.world, params.seed), out, minutes=args.minutes, overwrite=args.overwrite,
                                max_steps=args.max_steps, text_encoder=args.text_encoder,
                                text_encoder_model=args.text_encoder_model)
    print(json.dumps({"pipeline": str(path), **json.loads((path / "biaslib_train.json").read_text())}, default=str))
    return 0


def cmd_finetune_run(args: argparse.Namespace) -> int:
    """Fine-tune a text-to-image pipeline folder on an imagefolder or webdataset shards."""
    import dataclasses

    from biaslib.finetune import FinetuneConfig, finetune, load_finetune_dataset
    from biaslib.generate import GenerateConfig, load_pipeline

    options = _overrides(args.opt)
    known = {f.name for f in dataclasses.fields(FinetuneConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise BiaslibError(f"unknown fine-tuning option {unknown[0]}; allowed: {', '.join(sorted(known))}")
    try:
        config = FinetuneConfig(output_dir=args.out, **options)
    except (TypeError, ValueError) as err:
        raise BiaslibError(f"fine-tuning options: {err}") from None
    dataset = load_finetune_dataset(args.data, resolution=config.resolution, center_crop=config.center_crop,
                                    random_flip=config.random_flip, image_column=config.image_column,
                                    caption_column=config.caption_column)
    pipe = load_pipeline(GenerateConfig(model=str(args.pipeline), dtype="fp32"))
    result = finetune(pipe, dataset, config)
    print(json.dumps({"output_dir": str(args.out), "global_step": result.global_step,
                      "train_seconds": round(result.train_seconds, 1)}))
    return 0


def cmd_train_run(args: argparse.Namespace) -> int:
    """Train (resume, or skip when finished) one CLIP per mixing ratio with open_clip_train."""
    from biaslib.train import train_ratio

    params = load_params(args.params, _overrides(args.set))
    for replicate in range(params.train.replicates):
        for ratio in args.ratio or params.mix.ratios:
            start = time.perf_counter()
            final = train_ratio(params, ratio, overwrite=args.overwrite, replicate=replicate)
            seconds = round(time.perf_counter() - start, 1)
            print(json.dumps({"ratio": str(ratio), "replicate": replicate, "checkpoint": str(final),
                              "seconds": seconds}))
    return 0


def cmd_train_command(args: argparse.Namespace) -> int:
    """Print the command that trains each ratio (``torchrun …`` when ``train.gpus`` > 1), for job scripts."""
    import shlex

    from biaslib.train import train_command

    params = load_params(args.params, _overrides(args.set))
    for replicate in range(params.train.replicates):
        for ratio in args.ratio or params.mix.ratios:
            print(shlex.join(train_command(params, ratio, replicate)))
    return 0


def cmd_train_list(args: argparse.Namespace) -> int:
    """Print the registry of an experiment's checkpoints (ratio, replicate, run name, epoch, path, final)."""
    from biaslib.train import checkpoints

    table = checkpoints(load_params(args.params, _overrides(args.set)))
    print(table.to_string(index=False) if len(table) else "no checkpoints")
    return 0


def cmd_features_extract(args: argparse.Namespace) -> int:
    """Embed images (a folder, a file list, or webdataset shards) and/or texts with an open_clip checkpoint
    and store them (one ``.npy`` + ids per model × dataset) in a FeatureStore folder."""
    from biaslib.features import FeatureStore, extract_image_features, extract_text_features
    from biaslib.models import load_clip

    model, preprocess, tokenizer = load_clip(args.checkpoint, args.model, device=args.device)
    store = FeatureStore(args.store)
    written = {}
    if args.images is not None:
        source, ids = _image_source(args.images)
        features = extract_image_features(model, preprocess, source, ids, batch_size=args.batch_size,
                                          workers=args.workers, precision=args.precision,
                                          encode_in=args.encode_in, progress=True)
        written["images"] = str(store.save(args.name, f"{args.dataset}_images", features))
    if args.texts is not None:
        ids, texts = _read_texts(args.texts)
        features = extract_text_features(model, tokenizer, texts, ids, batch_size=args.batch_size,
                                         precision=args.precision)
        written["texts"] = str(store.save(args.name, f"{args.dataset}_texts", features))
    if not written:
        raise BiaslibError("nothing to embed: give --images and/or --texts")
    print(json.dumps(written))
    return 0


def cmd_eval_run(args: argparse.Namespace) -> int:
    """Evaluate each ratio's CLIP: one result JSON per (experiment, ratio, evaluation)."""
    from biaslib.evaluate import evaluate_sweep

    params = load_params(args.params, _overrides(args.set))
    start = time.perf_counter()
    paths = evaluate_sweep(params, args.ratio, args.evaluation, overwrite=args.overwrite)
    print(json.dumps({"results": [str(p) for p in paths], "seconds": round(time.perf_counter() - start, 1)}))
    return 0


def cmd_bench_run(args: argparse.Namespace) -> int:
    """Evaluate this shard's models of a models file: one result JSON per (model, evaluation)."""
    from biaslib.studies.benchmark.leaderboard import parse_shard, run_benchmark, shard_from_env

    params = load_params(args.params, _overrides(args.set))
    shard = parse_shard(args.shard) if args.shard is not None else shard_from_env()
    start = time.perf_counter()
    paths = run_benchmark(params, args.models, args.evaluation, shard=shard, overwrite=args.overwrite)
    print(json.dumps({"shard": f"{shard[0]}/{shard[1]}", "results": [str(p) for p in paths],
                      "seconds": round(time.perf_counter() - start, 1)}))
    return 0


def cmd_bench_leaderboard(args: argparse.Namespace) -> int:
    """The benchmark's leaderboard (CSV) and its figure from the written results."""
    from biaslib.figures import save_figure
    from biaslib.io import write_csv
    from biaslib.results import collect
    from biaslib.studies.benchmark.leaderboard import leaderboard, leaderboard_figure

    params = load_params(args.params, _overrides(args.set))
    board = leaderboard(collect(params, study="benchmark"))
    if board.empty:
        raise BiaslibError(f"no benchmark results under {RunLayout(params).benchmark_results}; run `biaslib benchmark "
                           "run --models …` first")
    if args.out is not None:
        write_csv(args.out, board)
    if args.figures_dir is not None:
        save_figure(leaderboard_figure(board), args.figures_dir / f"{params.experiment}_benchmark_leaderboard")
    print(board[["evaluation", "dataset", "attribute", "metric", "kind", "model", "value", "ci_low", "ci_high"]]
          .to_string(index=False))
    return 0


#: What `results collect` counts per study: (grouped by, besides experiment; counted; its name).
_COLLECT_SUMMARY = {"amplification": ("evaluation", "ratio", "ratios"),
                    "multilingual": ("section", "language", "languages"),
                    "benchmark": ("evaluation", "model", "models")}


def cmd_results_collect(args: argparse.Namespace) -> int:
    """Aggregate result JSONs into one tidy table (CSV or parquet by suffix; stdout summary)."""
    from biaslib.io import write_csv, write_parquet
    from biaslib.results import collect

    source = args.root if args.root is not None else load_params(args.params, _overrides(args.set))
    if args.out is not None and args.out.suffix not in (".csv", ".parquet"):
        raise BiaslibError(f"--out {args.out}: write .csv or .parquet (no other table format is written)")
    frame = collect(source, skip_bad=args.skip_bad, study=args.study)
    if args.out is not None:
        (write_parquet if args.out.suffix == ".parquet" else write_csv)(args.out, frame)
    by, counted, name = _COLLECT_SUMMARY[args.study]
    print(frame.groupby(["experiment", by])[counted].nunique().rename(name).to_string() if len(frame)
          else "no results")
    return 0


def cmd_figures_draw(args: argparse.Namespace) -> int:
    """Draw the amplification study's figures (every variant of the params file) and print its findings."""
    from biaslib.config import REPO_ROOT
    from biaslib.studies.amplification.figures import draw_study

    drawn = draw_study(args.params, _overrides(args.set), args.figures_dir or REPO_ROOT / "figures", k=args.k,
                       amplification=not args.no_amplification)
    for name, path in drawn["figures"].items():
        print(f"{name}: {path}")
    for section, lines in drawn["findings"].items():
        print(f"\n## {section}")
        print("\n".join(f"- {line}" for line in lines) or "- none")
    if drawn["missing"]:
        print(f"\nno results yet for {', '.join(drawn['missing'])}")
    return 0


def cmd_prompts_write(args: argparse.Namespace) -> int:
    """Write the template or MAGBIG prompt table in the given languages (offline translation)."""
    from biaslib.prompts import write_prompt_table

    subset = _value(args.subset) if args.subset else None
    if subset is not None and not isinstance(subset, dict):
        raise BiaslibError(f"--subset must be a JSON object such as '{{\"profession\": 10}}', got {args.subset!r}")
    models = dict(_overrides(args.model)) if args.model else None
    languages = args.language or ("en", "de", "zh", "ja")
    table = write_prompt_table(args.out, languages, prompt_set=args.prompt_set, subset=subset, model_paths=models)
    print(json.dumps({"out": str(args.out), "rows": len(table), "languages": sorted(table["language"].unique())}))
    return 0


def _multilingual_params(args: argparse.Namespace):
    """The params of a ``biaslib multilingual`` command, checked before any work."""
    from biaslib.studies.multilingual.pipeline import check_params

    params = load_params(args.params, _overrides(args.set))
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
    print(json.dumps({"output_dir": str(RunLayout(params).finetuned), "global_step": steps,
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
        eval_settings,
        evaluate_multilingual,
        find_clip_checkpoint,
        generation_confusion,
    )
    from biaslib.studies.multilingual.findings import multilingual_findings, multilingual_tests

    params = _multilingual_params(args)
    generations = list(params.multilingual.eval_models)
    confusion = {g: generation_confusion(params, g, source=args.confusion) for g in generations}
    clip = (Path(args.clip_checkpoint), args.clip_model) if args.clip_checkpoint else find_clip_checkpoint(params)
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
        raise DataLayoutError(f"no multilingual results under {RunLayout(params).multilingual_results}; "
                              f"run `biaslib multilingual eval --params {args.params}` first")
    print("\n".join(findings_of_results(collected)[1]))
    return 0


def cmd_study_run(args: argparse.Namespace) -> int:
    """Run export → generate → mix → train → eval for the experiment, or for each variant of the params file."""
    from biaslib.studies.amplification.pipeline import STEPS, run_study

    seconds = run_study(args.params, _overrides(args.set), steps=args.step or STEPS, variants=args.variant)
    print(json.dumps(seconds, indent=1))
    return 0


def _design(spec: str) -> tuple[str, tuple[int, list[float]]]:
    """``R:PARAMS_FILE`` or ``R:0,0.5,1`` → (label, (replicates, ratio fractions)) for ``study power``."""
    from biaslib.config import load_params
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

    study = load_study(args.params, _overrides(args.set))
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
    from biaslib.config import REPO_ROOT, load_params
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
    report = report_control(args.params, _overrides(args.set), figures_dir=args.figures_dir or REPO_ROOT / "figures",
                            designs=designs, amplification=not args.no_amplification)
    print(report["markdown"])
    if args.out:
        write_text(args.out, report["markdown"] + "\n")
    return 0


def cmd_faces_analyse(args: argparse.Namespace) -> int:
    """Detect faces, classify the single-face images and write one row per image (CSV or parquet)."""
    from biaslib.faces import analyse_images, classifier_from_files
    from biaslib.io import write_csv, write_parquet

    ids, images, prompts = _read_images(args.images)
    classifier = classifier_from_files(args.classifier, args.weights, args.clip_model)
    frame = analyse_images(images, args.detector, classifier, batch_size=args.batch_size, skin=args.skin,
                           progress=True)
    frame.insert(0, "id", ids)
    if prompts is not None:
        frame.insert(1, "prompt", prompts)
    (write_parquet if args.out.suffix == ".parquet" else write_csv)(args.out, frame)
    if "outcome" in frame:
        counts = {str(k): int(v) for k, v in frame["outcome"].value_counts().items()}
    else:
        counts = {"with_faces": int((frame["n_faces"] > 0).sum())}
    print(json.dumps({"out": str(args.out), "images": len(frame), **counts}))
    return 0


def _read_images(path: Path) -> tuple[list[str], list, list[str] | None]:
    """``(ids, PIL images, prompts or None)`` from an image folder or webdataset shards (prompts from
    the samples' ``.txt``)."""
    from PIL import Image

    from biaslib.data.cc3m import iter_cc3m

    source, ids = _image_source(path)
    if isinstance(source, list):
        return ids, [Image.open(f).convert("RGB") for f in source], None
    samples = list(iter_cc3m(source))
    return [s.key for s in samples], [s.image for s in samples], [s.caption for s in samples]


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def _image_source(path: Path) -> tuple[Path | list[Path], list[str] | None]:
    """``(source, ids)``: shards stay a path (folder of ``.tar``, one ``.tar`` or a brace pattern; ids =
    sample keys); a folder of image files becomes its sorted file list, ids = paths relative to it."""
    if path.is_dir() and not any(path.glob("*.tar")):
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise BiaslibError(f"{path} holds neither webdataset shards (*.tar) nor images "
                               f"({', '.join(IMAGE_SUFFIXES)})")
        return files, [f.relative_to(path).as_posix() for f in files]
    return path, None


def _read_texts(path: Path) -> tuple[list[str], list[str]]:
    """``(ids, texts)`` from a CSV or parquet table with columns ``id`` and ``text``."""
    import pandas as pd

    if not path.is_file():
        raise BiaslibError(f"no text table {path}: expected a CSV or parquet file with columns id, text")
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"id", "text"} - set(frame.columns)
    if missing:
        raise BiaslibError(f"{path} lacks column(s) {sorted(missing)}; expected columns id, text")
    return frame["id"].astype(str).tolist(), frame["text"].astype(str).tolist()


def _add_world_commands(steps: argparse._SubParsersAction) -> None:
    """``biaslib world …``: the synthetic world."""
    world = steps.add_parser("world", help="the synthetic world")
    world_actions = world.add_subparsers(dest="action", required=True)
    export = world_actions.add_parser("export", help="write every real dataset format")
    _add_params(export)
    export.add_argument("--out", type=Path, default=None, help="output folder (default: <runs>/<experiment>/data)")
    export.add_argument("--overwrite", action="store_true",
                        help="replace an export made with other parameters in --out")
    export.set_defaults(func=cmd_world_export)
    tables = world_actions.add_parser("tables", help="print the tabled conditionals")
    _add_params(tables)
    tables.set_defaults(func=cmd_world_tables)
    tiny = world_actions.add_parser("train-pipeline", help="train (or reuse) the world's tiny diffusion pipeline")
    _add_params(tiny)
    tiny.add_argument("--minutes", type=_positive(float), default=12.0, help="CPU training budget (default 12)")
    tiny.add_argument("--max-steps", type=_positive(int), default=None,
                      help="fix the number of updates instead of deriving it from --minutes at the measured speed "
                           "(the same pipeline on any machine and under any load)")
    tiny.add_argument("--out", type=Path, default=None, help="folder (default: <runs>/cache/tiny_pipeline)")
    tiny.add_argument("--overwrite", action="store_true", help="replace a pipeline trained with other settings")
    tiny.add_argument("--text-encoder", type=Path, default=None,
                      help="open_clip checkpoint or run folder (its newest epoch) whose text tower is the frozen text "
                           "encoder, e.g. runs/world_default/clip/world_default_000 (default: train one from scratch)")
    tiny.add_argument("--text-encoder-model", default="biaslib-tiny-rn",
                      help="open_clip model name of --text-encoder (default biaslib-tiny-rn)")
    tiny.set_defaults(func=cmd_world_train_pipeline)


def _add_finetune_commands(steps: argparse._SubParsersAction) -> None:
    """``biaslib finetune …``: fine-tune a text-to-image pipeline (biaslib.finetune)."""
    ft = steps.add_parser("finetune", help="fine-tune a text-to-image pipeline (biaslib.finetune)")
    ft_actions = ft.add_subparsers(dest="action", required=True)
    ft_run = ft_actions.add_parser("run", help="fine-tune; resumable with --opt resume_from_checkpoint=latest")
    ft_run.add_argument("--pipeline", type=Path, required=True, help="diffusers pipeline folder to start from")
    ft_run.add_argument("--data", type=Path, required=True, help="imagefolder with metadata.jsonl, or shards")
    ft_run.add_argument("--out", type=Path, required=True, help="output folder (checkpoints, final pipeline)")
    ft_run.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                        help="FinetuneConfig field, e.g. --opt learning_rate=1e-4 --opt mixed_precision=bf16")
    ft_run.set_defaults(func=cmd_finetune_run)


def _add_generate_commands(steps: argparse._SubParsersAction) -> None:
    """``biaslib generate …``: text-to-image generation into webdataset shards."""
    gen = steps.add_parser("generate", help="text-to-image generation into webdataset shards")
    gen_actions = gen.add_subparsers(dest="action", required=True)
    for action, func, text in (("run", cmd_generate_run, "generate (resumes finished shards)"),
                               ("verify", cmd_generate_verify, "check every id appears exactly once")):
        sub = gen_actions.add_parser(action, help=text)
        _add_params(sub)
        sub.add_argument("--captions", type=Path, default=None,
                         help="caption table or CC3M export folder (default: <runs>/<experiment>/data/cc3m)")
        sub.add_argument("--name", default=None,
                         help="generation run name (default: the params' mix.generated, the run mixing reads)")
        sub.add_argument("--out", type=Path, default=None,
                         help="shard folder (default: <runs>/<experiment>/generated/<name>)")
        sub.set_defaults(func=func)
        if action == "run":
            sub.add_argument("--max-items", type=_positive(int), default=None,
                             help="stop after this many images (resumable)")
            sub.add_argument("--overwrite", action="store_true", help="replace images made with other settings")
            sub.add_argument("--rank", type=int, default=None, help="this process's rank (default: $RANK or 0)")
            sub.add_argument("--world-size", type=int, default=None,
                             help="number of processes (default: $WORLD_SIZE or 1)")


def _add_mix_commands(steps: argparse._SubParsersAction) -> None:
    """``biaslib mix …``: nested ratio mixing of real and generated shards."""
    mixp = steps.add_parser("mix", help="nested ratio mixing of real and generated shards")
    mix_actions = mixp.add_subparsers(dest="action", required=True)
    for action, func, text in (("run", cmd_mix_run, "write the mixes"),
                               ("verify", cmd_mix_verify, "check the mixes against their manifests")):
        sub = mix_actions.add_parser(action, help=text)
        _add_params(sub)
        _add_ratios(sub)
        if action == "run":
            sub.add_argument("--overwrite", action="store_true", help="replace a mix made with other parameters")
        sub.set_defaults(func=func)


def _add_train_commands(steps: argparse._SubParsersAction) -> None:
    """``biaslib train …``: train one CLIP per mixing ratio with open_clip_train."""
    trainp = steps.add_parser("train", help="train one CLIP per mixing ratio with open_clip_train")
    train_actions = trainp.add_subparsers(dest="action", required=True)
    for action, func, text in (("run", cmd_train_run, "train (resumes from the last epoch; skips finished runs)"),
                               ("command", cmd_train_command, "print the training command per ratio (torchrun)"),
                               ("list", cmd_train_list, "list the experiment's checkpoints")):
        sub = train_actions.add_parser(action, help=text)
        _add_params(sub)
        if action != "list":
            _add_ratios(sub)
        if action == "run":
            sub.add_argument("--overwrite", action="store_true",
                             help="delete and retrain a run started with other settings")
        sub.set_defaults(func=func)


def _add_features_commands(steps: argparse._SubParsersAction) -> None:
    """``biaslib features …``: batched CLIP embeddings into a feature store."""
    feats = steps.add_parser("features", help="batched CLIP embeddings into a feature store")
    feat_actions = feats.add_subparsers(dest="action", required=True)
    extract = feat_actions.add_parser("extract", help="embed images and/or texts with an open_clip checkpoint")
    extract.add_argument("--checkpoint", type=Path, required=True, help="open_clip checkpoint (.pt or .safetensors)")
    extract.add_argument("--model", default="biaslib-tiny-rn", help="open_clip model name of the checkpoint")
    extract.add_argument("--images", type=Path, default=None, help="image folder, .tar shard, shard folder or pattern")
    extract.add_argument("--texts", type=Path, default=None, help="CSV/parquet table with columns id, text")
    extract.add_argument("--store", type=Path, required=True, help="feature store folder")
    extract.add_argument("--name", required=True, help="model name in the store, e.g. world_default_020")
    extract.add_argument("--dataset", required=True, help="dataset name in the store, e.g. phase")
    extract.add_argument("--batch-size", type=int, default=256)
    extract.add_argument("--workers", type=int, default=1, help="image decoding processes")
    extract.add_argument("--encode-in", default="auto", choices=["auto", "main", "workers"],
                         help="where the image tower runs: this process, or (CPU) each worker on its own "
                              "batches; auto = workers on a CPU with --workers >= 2 where they pay off (shards "
                              "or >= 2,048 images, a model that does not dominate decoding)")
    extract.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    extract.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    extract.set_defaults(func=cmd_features_extract)


def _add_eval_commands(steps: argparse._SubParsersAction) -> None:
    """``biaslib eval …``: evaluate each ratio's CLIP (the registered evaluations,
    :func:`biaslib.evaluations.list_evaluations`)."""
    evalp = steps.add_parser("eval", help=f"evaluate each ratio's CLIP ({', '.join(list_evaluations())})")
    eval_actions = evalp.add_subparsers(dest="action", required=True)
    eval_run = eval_actions.add_parser("run", help="write runs/<exp>/results/<exp>__<ratio>__<evaluation>.json")
    _add_params(eval_run)
    _add_ratios(eval_run)
    eval_run.add_argument("--evaluation", action="append", default=None, choices=list_evaluations(),
                          metavar="NAME", help=f"{' | '.join(list_evaluations())} (repeatable; default: "
                                               "eval.evaluations)")
    eval_run.add_argument("--overwrite", action="store_true", help="recompute results made with other settings")
    eval_run.set_defaults(func=cmd_eval_run)


def _add_bench_commands(steps: argparse._SubParsersAction) -> None:
    """``biaslib benchmark …``: any CLIP × the bias evaluations (the benchmark study, notebook 06)."""
    benchp = steps.add_parser("benchmark", aliases=["bench"],
                              help="benchmark any CLIP for social bias (models file × evaluations)")
    bench_actions = benchp.add_subparsers(dest="action", required=True)
    run = bench_actions.add_parser("run", help="write runs/<exp>/results/benchmark/<exp>__<model>__<evaluation>.json")
    _add_params(run)
    run.add_argument("--models", type=Path, required=True, help="models file (e.g. params/models.yaml)")
    run.add_argument("--evaluation", action="append", default=None, choices=list_evaluations(), metavar="NAME",
                     help=f"{' | '.join(list_evaluations())} (repeatable; default: eval.evaluations)")
    run.add_argument("--shard", default=None, metavar="I/N",
                     help="evaluate every N-th model from the I-th (default: RANK/WORLD_SIZE or the SLURM array "
                          "task, else 0/1)")
    run.add_argument("--overwrite", action="store_true", help="recompute results made with other settings")
    run.set_defaults(func=cmd_bench_run)
    board = bench_actions.add_parser("leaderboard", help="one row per model and measure, with intervals; figure")
    _add_params(board)
    board.add_argument("--out", type=Path, default=None, help="write the table (.csv)")
    board.add_argument("--figures-dir", type=Path, default=None,
                       help="draw <experiment>_benchmark_leaderboard.png/.pdf there")
    board.set_defaults(func=cmd_bench_leaderboard)


def _add_results_commands(steps: argparse._SubParsersAction) -> None:
    """``biaslib results …``: aggregate result JSONs."""
    resultsp = steps.add_parser("results", help="aggregate result JSONs")
    results_actions = resultsp.add_subparsers(dest="action", required=True)
    collect = results_actions.add_parser("collect", help="one tidy table of every result row")
    _add_params(collect)
    collect.add_argument("--root", type=Path, default=None,
                         help="results, experiment or runs folder (default: the params' experiment)")
    collect.add_argument("--out", type=Path, default=None, help="write the table (.csv or .parquet)")
    collect.add_argument("--skip-bad", action="store_true", help="skip malformed JSON files with a warning")
    collect.add_argument("--study", choices=tuple(_COLLECT_SUMMARY), default="amplification",
                         help="whose results to read (one schema, one table per study; default amplification)")
    collect.set_defaults(func=cmd_results_collect)


def _add_figures_commands(steps: argparse._SubParsersAction) -> None:
    """``biaslib figures …``: the amplification study's figures and findings (notebook 05)."""
    figuresp = steps.add_parser("figures", help="the amplification study's figures and findings (notebook 05)")
    figures_actions = figuresp.add_subparsers(dest="action", required=True)
    draw = figures_actions.add_parser("draw", help="draw every figure from the result JSONs and print the findings")
    _add_params(draw)
    draw.add_argument("--figures-dir", type=Path, default=None, help="output folder (default: <repo>/figures)")
    draw.add_argument("--k", type=_positive(int), default=1, help="retrieval cut-off drawn: R@k (default 1)")
    draw.add_argument("--no-amplification", action="store_true",
                      help="skip the generator-vs-data amplification (it reads the generated images)")
    draw.set_defaults(func=cmd_figures_draw)


def _add_study_commands(steps: argparse._SubParsersAction) -> None:
    """``biaslib amplification …``: the amplification study end to end (every variant of a params file)."""
    studyp = steps.add_parser("amplification", aliases=["study"],
                              help="the amplification study end to end (every variant of a params file)")
    study_actions = studyp.add_subparsers(dest="action", required=True)
    study_run = study_actions.add_parser("run", help="export, generate, mix, train, eval (finished work is skipped)")
    _add_params(study_run)
    study_run.add_argument("--step", action="append", default=None,
                           help="export | generate | mix | train | eval (repeatable; default: all, in order)")
    study_run.add_argument("--variant", action="append", default=None,
                           help="only this variant of the params file (repeatable; default: every variant)")
    study_run.set_defaults(func=cmd_study_run)
    study_power = study_actions.add_parser(
        "power", help="dose-response tests of every headline measure and the slope a design detects (80%% power)")
    _add_params(study_power)
    study_power.add_argument("--design", action="append", default=None,
                             help="another design, R:PARAMS_FILE (its ratios) or R:0,0.5,1, sized with this study's "
                                  "variances (repeatable)")
    study_power.add_argument("--k", type=int, default=1, help="retrieval cut-off of the gap measures (R@k)")
    study_power.add_argument("--out", type=Path, default=None, help="also write the Markdown here")
    study_power.set_defaults(func=cmd_study_power)
    study_control = study_actions.add_parser(
        "control", help="the paired controls of a params file with a control section: the declared primary test "
                        "per pair, the secondary family, figures and findings")
    _add_params(study_control)
    study_control.add_argument("--design", action="append", default=None,
                               help="also size a paired design of R replicate pairs, or of a params file's "
                                    "train.replicates (repeatable), with this control's spread of a paired difference")
    study_control.add_argument("--figures-dir", type=Path, default=None, help="default: the repository's figures/")
    study_control.add_argument("--no-amplification", action="store_true",
                               help="leave out the generators' amplification against the real data")
    study_control.add_argument("--out", type=Path, default=None, help="also write the Markdown here")
    study_control.set_defaults(func=cmd_study_control)


def _add_faces_commands(steps: argparse._SubParsersAction) -> None:
    """``biaslib faces …``: face detection and perceived-attribute classification."""
    facesp = steps.add_parser("faces", help="face detection and perceived-attribute classification")
    face_actions = facesp.add_subparsers(dest="action", required=True)
    analyse = face_actions.add_parser("analyse", help="one row per image: faces found, attributes of single faces")
    analyse.add_argument("--images", type=Path, required=True, help="image folder, .tar shard, shard folder or pattern")
    analyse.add_argument("--out", type=Path, required=True, help="output table (.csv or .parquet)")
    analyse.add_argument("--detector", default="mtcnn", choices=_Registered(_face_detectors), metavar="NAME",
                         help="face detector: %(choices)s (default %(default)s)")
    analyse.add_argument("--classifier", default="onnx", choices=_Registered(_face_classifiers), metavar="NAME",
                         help="perceived-attribute classifier: %(choices)s (default %(default)s)")
    analyse.add_argument("--weights", type=Path, default=None, help="FairFace weights or CLIP checkpoint (local)")
    analyse.add_argument("--clip-model", default="biaslib-tiny-rn", help="open_clip model name of --weights")
    analyse.add_argument("--skin", action="store_true", help="add ITA skin tone and its Monk-style bin")
    analyse.add_argument("--batch-size", type=int, default=32)
    analyse.set_defaults(func=cmd_faces_analyse)


def _add_prompts_commands(steps: argparse._SubParsersAction) -> None:
    """``biaslib prompts …``: multilingual template and MAGBIG prompt tables."""
    promptsp = steps.add_parser("prompts", help="multilingual template and MAGBIG prompt tables")
    prompt_actions = promptsp.add_subparsers(dest="action", required=True)
    write = prompt_actions.add_parser("write", help="write a prompt table (offline translation)")
    write.add_argument("--out", type=Path, required=True, help="output table (.csv or .parquet)")
    write.add_argument("--language", action="append", default=None,
                       help="en | de | zh | ja or the MAGBIG name (repeatable; default: all four)")
    write.add_argument("--prompt-set", default="template", choices=["template", "magbig"])
    write.add_argument("--subset", default=None,
                       help='JSON object: slot -> first N values or a list, e.g. \'{"profession": 10}\'')
    write.add_argument("--model", action="append", default=[], metavar="LANG=FOLDER",
                       help="local seq2seq translation model per language (default: the shipped dictionaries)")
    write.set_defaults(func=cmd_prompts_write)


def _add_multilingual_commands(steps: argparse._SubParsersAction) -> None:
    """``biaslib multilingual …``: the multilingual gender-bias study (prompts → fine-tuning)."""
    mlp = steps.add_parser("multilingual", help="the multilingual gender-bias study (prompts → fine-tuning)")
    ml_actions = mlp.add_subparsers(dest="action", required=True)
    for action, func, text in (
            ("generate", cmd_multilingual_generate, "generate per language (data, base or finetuned model)"),
            ("dataset", cmd_multilingual_dataset, "write the full and balanced imagefolders"),
            ("finetune", cmd_multilingual_finetune, "fine-tune the base pipeline (resumes)"),
            ("run", cmd_multilingual_run, "prompts, generate, dataset, finetune, generate_eval (skips finished work)"),
            ("eval", cmd_multilingual_eval, "fairness (raw and corrected), CLIP score and amplification per language"),
            ("findings", cmd_multilingual_findings, "findings of the written results (BH q-values; no evaluation)")):
        sub = ml_actions.add_parser(action, help=text)
        _add_params(sub)
        if action != "findings":  # findings only read
            sub.add_argument("--overwrite", action="store_true", help="replace outputs made with other settings")
        sub.set_defaults(func=func)
        if action == "generate":
            sub.add_argument("--what", default="data", choices=["data", "base", "finetuned"],
                             help="data: the dataset's images; base/finetuned: the evaluation images")
            sub.add_argument("--language", action="append", default=None,
                             help="en | de | zh | ja or the MAGBIG name (repeatable; default: all the set needs)")
            sub.add_argument("--max-items", type=_positive(int), default=None,
                             help="stop each language after this many images (resumable)")
        if action == "eval":
            sub.add_argument("--confusion", default="renders", choices=["renders", "stated"],
                             help="classifier error measured on world renders of known gender (default) or on the "
                                  "pipeline's images of gender-stating prompts")
            sub.add_argument("--clip-checkpoint", default=None,
                             help="open_clip checkpoint for the CLIP score (default: the demo ratio-0 CLIP)")
            sub.add_argument("--clip-model", default="biaslib-tiny-rn", help="its open_clip model name")
            sub.add_argument("--n-boot", type=int, default=None,
                             help="bootstrap draws for every CI (default: the params' multilingual.eval_n_boot)")
        if action == "run":
            sub.add_argument("--step", action="append", default=None,
                             help="prompts | generate | dataset | finetune | generate_eval (repeatable; default: all)")


#: Commands renamed in 0.1 (issue 28): old name → new name. The old name still works, with a note, for one release.
RENAMED = {"bench": "benchmark", "study": "amplification"}


class _Registered(Sequence):
    """Choices read from a registry when argparse first needs them (to check a value or print help), so building
    the parser imports nothing heavy (the face registries import torch)."""

    def __init__(self, names: Callable[[], list[str]]):
        self._names, self._cache = names, None

    def _list(self) -> list[str]:
        if self._cache is None:
            self._cache = list(self._names())
        return self._cache

    def __getitem__(self, index):  # noqa: ANN001, ANN204  (Sequence's signature)
        return self._list()[index]

    def __len__(self) -> int:
        return len(self._list())


def _face_detectors() -> list[str]:
    from biaslib.faces import list_detectors

    return list_detectors()


def _face_classifiers() -> list[str]:
    from biaslib.faces import list_classifiers

    return ["none", *list_classifiers()]


def build_parser() -> argparse.ArgumentParser:
    """The ``biaslib`` argument parser: one sub-command group per step or study, each added by its
    ``_add_<group>_commands``."""
    parser = argparse.ArgumentParser(prog="biaslib", description=__doc__.split("\n\n")[0].replace("``", ""))
    parser.add_argument("--version", action="version", version=f"biaslib {__version__}")
    steps = parser.add_subparsers(dest="command", required=True)
    for add_commands in (_add_world_commands,  # the amplification pipeline in its order, then the multilingual
                         _add_generate_commands, _add_mix_commands, _add_train_commands, _add_features_commands,
                         _add_eval_commands, _add_bench_commands, _add_results_commands, _add_figures_commands,
                         _add_study_commands, _add_prompts_commands, _add_finetune_commands, _add_faces_commands,
                         _add_multilingual_commands):
        add_commands(steps)
    return parser


@contextlib.contextmanager
def _warnings_once_per_kind() -> Iterator[None]:
    """While a command runs, each kind of warning (category and message) prints one line, without the source line
    Python shows: ``biaslib: warning: RuntimeWarning: Mean of empty slice``."""
    shown: set[tuple[type, str]] = set()

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        kind = (category, str(message))
        if kind not in shown:
            shown.add(kind)
            print(f"biaslib: warning: {category.__name__}: {message}", file=sys.stderr)

    with warnings.catch_warnings():  # restores showwarning afterwards
        warnings.showwarning = show
        yield


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``biaslib`` console script."""
    args = build_parser().parse_args(argv)
    if args.command in RENAMED:
        print(f"biaslib: note: `biaslib {args.command}` is now `biaslib {RENAMED[args.command]}`; the old name "
              "goes in the next release", file=sys.stderr)
    try:
        with _warnings_once_per_kind():
            return args.func(args)
    except (BiaslibError, ValueError) as err:  # bad params, data or arguments: one line, no traceback
        print(f"biaslib: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("biaslib: interrupted (finished work is kept; rerun the command to resume)", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `biaslib … | head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as err:  # an unwritable or misnamed path: the message names it
        print(f"biaslib: error: {err} (check the path and its permissions)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
