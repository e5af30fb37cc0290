"""The ``prime-stats`` command line.

Exit codes: 0 success, 2 bad usage or configuration, 3 bad input data, 1 unexpected error.
"""
from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

EXIT_USAGE, EXIT_DATA, EXIT_ERROR = 2, 3, 1


def _simulate(args) -> int:
    from .simulate import simulate_study

    written = simulate_study(args.out, n_a=args.n_a, n_b=args.n_b, seed=args.seed,
                             images=not args.no_images, n_expression=args.n_expression,
                             workers=args.workers, progress=not args.quiet)
    print(f"simulated PRIME study written to {Path(args.out).resolve()}")
    for k, v in written.items():
        print(f"  {k:16s} {v}")
    print(f"run it with:  prime-stats run {written['config']}")
    return 0


def _run(args) -> int:
    from .study import StudyConfig, run_study

    cfg = StudyConfig.from_yaml(args.config)
    if args.output:
        cfg.output = str(Path(args.output).resolve())
    if args.fast:
        cfg.models.fast = True
    if args.workers:
        cfg.models.n_jobs = args.workers
    if args.no_cache:
        cfg.models.cache = False
    res = run_study(cfg, progress=not args.quiet, report=not args.no_report)
    _print_metrics(res.metrics)
    print(f"outputs in {res.output_dir}")
    if res.report:
        print(f"report: {res.report['html']}\n        {res.report['pdf']}")
    return 0


def _print_metrics(metrics):
    import pandas as pd

    cols = [c for c in ("endpoint", "model", "split", "metric", "estimate", "lower", "upper")
            if c in metrics.columns]
    with pd.option_context("display.width", 120, "display.max_rows", 200,
                           "display.float_format", "{:.3f}".format):
        print(metrics[cols].to_string(index=False))


def _extract(args) -> int:
    import yaml

    from .imaging import extract_manifest

    settings = None
    if args.settings:
        settings = yaml.safe_load(Path(args.settings).read_text()) or {}
    res = extract_manifest(args.manifest, args.out, settings=settings, workers=args.workers,
                           scheduler=args.scheduler, progress=not args.quiet)
    status = res.log[res.log["observer"] == 1]["status"].value_counts().to_dict()
    print(f"features: {res.features.shape[0]} patients x {res.features.shape[1]} features -> {args.out}")
    print(f"cases: {status}")
    for k, v in res.paths.items():
        print(f"  {k:10s} {v}")
    if res.excluded:
        print(f"failed (see the log): {', '.join(res.excluded[:20])}", file=sys.stderr)
        return EXIT_DATA if len(res.excluded) == res.log["patient_id"].nunique() else 0
    return 0


def _load_cohort(args, require_outcomes: bool):
    from .cohort import Cohort
    from .study import FrozenStudy

    frozen = FrozenStudy.load(args.study)
    cohort = Cohort.from_files(args.clinical, args.manifest, columns=frozen.columns,
                               require_outcomes=require_outcomes)
    return frozen, cohort


def _predict(args) -> int:
    frozen, cohort = _load_cohort(args, require_outcomes=False)
    pred = frozen.predict(cohort, name=args.name, workers=args.workers, progress=not args.quiet)
    pred.to_csv(args.out, index=False)
    print(f"{len(pred)} patients scored by the frozen models of {args.study} -> {args.out}")
    return 0


def _validate(args) -> int:
    from .cohort import Cohort
    from .study import FrozenStudy

    frozen = FrozenStudy.load(args.study)
    cohorts = {}
    for spec in args.cohort:
        parts = spec.split(":")
        if len(parts) not in (2, 3):
            raise ValueError(f"--cohort {spec!r}: expected NAME:CLINICAL.csv[:MANIFEST.csv]")
        name, clinical = parts[0], parts[1]
        cohorts[name] = Cohort.from_files(clinical, parts[2] if len(parts) == 3 else None,
                                          columns=frozen.columns)
    metrics = frozen.validate(cohorts, engine=args.engine, workers=args.workers)
    metrics.to_csv(args.out, index=False)
    _print_metrics(metrics[metrics["metric"].isin(["AUC", "C-index", "IBS"])])
    print(f"metrics for {len(cohorts)} cohort(s) -> {args.out}")
    return 0


def _report(args) -> int:
    from .report import build_report

    res = build_report(args.study, include_identifiers=args.include_identifiers, title=args.title)
    print(f"report: {res['html']}\n        {res['pdf']}")
    if res.get("missing_sections"):
        print(f"sections without results: {', '.join(res['missing_sections'])}")
    return 0


def _demo(args) -> int:
    from .simulate import simulate_study
    from .study import StudyConfig, run_study

    out = Path(args.out).resolve()
    data = out / "data"
    if (data / "study.yaml").is_file() and not args.fresh:
        print(f"reusing the simulated study in {data} (--fresh to regenerate)", file=sys.stderr)
    else:
        simulate_study(data, seed=args.seed, workers=args.workers, progress=True)
    cfg = StudyConfig.from_yaml(data / "study.yaml")
    cfg.output = str(out / "results")
    cfg.models.n_jobs = args.workers
    cfg.models.cache = not args.no_cache
    res = run_study(cfg, progress=True)
    _print_metrics(res.metrics)
    print(f"\nPRIME demo finished. Outputs in {res.output_dir}")
    for f in sorted(res.output_dir.iterdir()):
        print(f"  {f.name}")
    if res.report:
        print(f"\nTRIPOD+AI report:\n  {res.report['html']}\n  {res.report['pdf']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="prime-stats",
        description="PRIME: multimodal HCC response (PRIME-R) and survival (PRIME-S) models, "
                    "validated without leakage.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run 'prime-stats COMMAND --help' for a command's options and an example.")
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def add(name, help_, example):
        return sub.add_parser(name, help=help_, description=help_,
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog="example:\n  " + textwrap.dedent(example).strip())

    s = add("simulate", "write the simulated PRIME study (clinical, dual-phase CT, expression)",
            "prime-stats simulate --out sim --seed 1")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--seed", type=int, default=2024)
    s.add_argument("--n-a", type=int, default=113, help="patients at centre A (development)")
    s.add_argument("--n-b", type=int, default=133, help="patients at centre B (external)")
    s.add_argument("--n-expression", type=int, default=33, help="patients with RNA-seq counts")
    s.add_argument("--no-images", action="store_true", help="clinical data only")
    s.add_argument("--workers", type=int, default=1)
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=_simulate)

    r = add("run", "run a PRIME study from a YAML config", "prime-stats run sim/study.yaml")
    r.add_argument("config", help="StudyConfig YAML file")
    r.add_argument("--output", help="override the config's output folder")
    r.add_argument("--fast", action="store_true", help="small grids (a quick look, not for reporting)")
    r.add_argument("--no-report", action="store_true", help="skip the HTML/PDF report")
    r.add_argument("--workers", type=int, help="parallel workers (overrides models.n_jobs)")
    r.add_argument("--no-cache", action="store_true",
                   help="refit models, nested CV and SHAP even when <output>/cache holds them")
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=_run)

    e = add("extract", "extract dual-phase radiomics features from an image manifest",
            "prime-stats extract sim/manifest.csv --out features.parquet --workers 2")
    e.add_argument("manifest", help="CSV: patient_id, phase (AP/PVP), image, mask[, mask_observer2]")
    e.add_argument("--out", required=True, help="output Parquet file (log and settings written beside it)")
    e.add_argument("--settings", help="YAML file of radiomics settings (see prime_stats.imaging)")
    e.add_argument("--workers", type=int, default=1)
    e.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786) instead of local processes")
    e.add_argument("--quiet", action="store_true")
    e.set_defaults(func=_extract)

    pr = add("predict", "score new patients with the frozen models of a fitted study",
             "prime-stats predict sim/results new_clinical.csv --manifest new_manifest.csv --out pred.csv")
    pr.add_argument("study", help="output folder of 'prime-stats run'")
    pr.add_argument("clinical", help="clinical CSV/Parquet of the new patients (outcomes optional)")
    pr.add_argument("--manifest", help="image manifest (needed when the models use radiomics)")
    pr.add_argument("--out", default="predictions_new.csv")
    pr.add_argument("--name", default="new", help="label for the split column")
    pr.add_argument("--workers", type=int, default=1)
    pr.add_argument("--quiet", action="store_true")
    pr.set_defaults(func=_predict)

    v = add("validate", "validate the frozen models on one or more external cohorts, each separately",
            "prime-stats validate sim/results --cohort centreC:c.csv:c_manifest.csv --cohort centreD:d.csv")
    v.add_argument("study", help="output folder of 'prime-stats run'")
    v.add_argument("--cohort", action="append", required=True, metavar="NAME:CLINICAL[:MANIFEST]")
    v.add_argument("--out", default="validation_metrics.csv")
    v.add_argument("--engine", default="auto", choices=["auto", "python", "R"])
    v.add_argument("--workers", type=int, default=1)
    v.set_defaults(func=_validate)

    rp = add("report", "write the TRIPOD+AI report (HTML and PDF) of a fitted study",
             "prime-stats report sim/results")
    rp.add_argument("study", help="output folder of 'prime-stats run'")
    rp.add_argument("--title")
    rp.add_argument("--include-identifiers", action="store_true",
                    help="show patient identifiers (off by default)")
    rp.set_defaults(func=_report)

    d = add("demo", "simulate the 246-patient study and run it end to end",
            "prime-stats demo --out out/demo")
    d.add_argument("--out", default="out/demo")
    d.add_argument("--seed", type=int, default=2024)
    d.add_argument("--workers", type=int, default=2)
    d.add_argument("--fresh", action="store_true", help="re-simulate even if data exist")
    d.add_argument("--no-cache", action="store_true",
                   help="refit models, nested CV and SHAP (the feature cache is still used)")
    d.set_defaults(func=_demo)
    return p


def _version() -> str:
    from . import __version__
    return f"prime-stats {__version__}"


def main(argv: list[str] | None = None) -> int:
    from .cohort import CohortError
    from .study import ConfigError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"prime-stats {args.command}: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (CohortError, FileNotFoundError, ValueError, KeyError) as exc:
        print(f"prime-stats {args.command}: input error: {exc}", file=sys.stderr)
        return EXIT_DATA
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
