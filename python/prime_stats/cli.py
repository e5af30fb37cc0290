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
    """The metrics table on screen: time and method tell rows apart (Harrell/Uno C, each horizon);
    fixed 3 decimals."""
    import pandas as pd

    cols = [c for c in ("endpoint", "model", "split", "metric", "time", "estimate", "lower", "upper", "method")
            if c in metrics.columns]
    fixed = {c: (lambda v: "" if pd.isna(v) else f"{v:.3f}") for c in ("estimate", "lower", "upper")}
    with pd.option_context("display.width", 160, "display.max_rows", 500, "display.max_colwidth", 50):
        print(metrics[cols].to_string(index=False, na_rep="", formatters={
            **fixed, "time": lambda v: "" if pd.isna(v) else f"{v:g}"}))


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


def _score(args) -> int:
    """prime-stats score: a predictions CSV and column names -> the tidy validation table."""
    import warnings

    import numpy as np
    import pandas as pd

    from .evaluation import decision, score

    pred = pd.read_csv(args.predictions)

    def col(name: str) -> np.ndarray:
        if name not in pred.columns:
            raise KeyError(f"column {name!r} not found in {args.predictions} "
                           f"(columns: {', '.join(map(str, pred.columns[:30]))})")
        return pred[name].to_numpy()

    def models(specs: list[str], option: str) -> dict[str, list[str]]:
        out = {}
        for spec in specs or []:
            name, sep, cols = spec.partition("=")
            if not sep or not name or not cols:
                raise ValueError(f"{option} {spec!r}: expected NAME=COLUMN[,COLUMN...]")
            out[name] = cols.split(",")
        return out

    survival = args.time is not None or args.event is not None
    if survival and (args.time is None or args.event is None):
        raise ValueError("a survival outcome needs both --time and --event")
    if survival == (args.outcome is not None):
        raise ValueError("give either --outcome (binary) or --time and --event (survival)")
    preds = models(args.model, "--model")
    if not preds:
        raise ValueError("give at least one --model NAME=COLUMN")
    thresholds = [float(v) for v in args.thresholds.split(",")] if args.thresholds else []
    fn = score.score_survival if survival else score.score_binary
    extra = {"bootstrap": args.bootstrap, "seed": args.seed} if args.bootstrap else {}
    with warnings.catch_warnings(record=True) as caught:   # library warnings are not passed to the shell
        warnings.simplefilter("always")
        if survival:
            times = [float(v) for v in args.times.split(",")] if args.times else list(score.DEFAULT_TIMES)
            risks = {}
            for name, cols in preds.items():
                if len(cols) != len(times):
                    raise ValueError(f"--model {name}: {len(cols)} column(s) for {len(times)} --times")
                m = np.column_stack([col(c).astype(float) for c in cols])
                risks[name] = 1 - m if args.survival_probabilities else m
            scores = {name: col(c).astype(float) for name, (c, *_) in models(args.risk_score, "--risk-score").items()}
            tab = fn(col(args.time), col(args.event), risks, times, risk_scores=scores or None,
                     engine=args.engine, conf_level=args.conf_level, ties=args.ties, **extra)
            nb = [decision.net_benefit_survival(col(args.time), col(args.event),
                                                {n: r[:, k] for n, r in risks.items()}, [t], thresholds,
                                                engine="python").assign(time=t)
                  for k, t in enumerate(times)] if thresholds else []
        else:
            probs = {name: col(cols[0]).astype(float) for name, cols in preds.items()}
            tab = fn(col(args.outcome), probs, engine=args.engine, conf_level=args.conf_level, **extra)
            nb = [decision.net_benefit(col(args.outcome), probs, thresholds, engine=args.engine)] if thresholds else []
    nb_rows = [d.assign(metric="net benefit", estimate=d["net_benefit"], method="decision curve "
                        "(treat if risk >= threshold)") for d in nb]
    out = pd.concat([tab, *nb_rows], ignore_index=True)
    cols = [c for c in ("model", "metric", "time", "threshold", "estimate", "se", "lower", "upper", "method",
                        "engine", "p_value") if c in out.columns]
    out = out[cols]
    if args.out:
        out.to_csv(args.out, index=False)
    shown = out.drop(columns=[c for c in ("se", "p_value") if c in out.columns])
    d = args.digits
    with pd.option_context("display.width", 200, "display.max_rows", 1000, "display.max_colwidth", 60):
        print(shown.to_string(index=False, na_rep="", formatters={
            c: (lambda v, d=d: "" if pd.isna(v) else f"{v:.{d}f}") for c in ("estimate", "lower", "upper")}
            | {"time": lambda v: "" if pd.isna(v) else f"{v:g}",
               "threshold": lambda v: "" if pd.isna(v) else f"{v:.2f}"}))
    if caught and args.show_warnings:
        for w in caught:
            print(f"warning: {w.category.__name__}: {w.message}", file=sys.stderr)
    if args.out:
        print(f"{len(out)} rows -> {args.out}")
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
    s.add_argument("--seed", type=int, default=2024, help="random seed of the simulation (default: %(default)s)")
    s.add_argument("--n-a", type=int, default=113, help="patients at centre A (development)")
    s.add_argument("--n-b", type=int, default=133, help="patients at centre B (external)")
    s.add_argument("--n-expression", type=int, default=33, help="patients with RNA-seq counts")
    s.add_argument("--no-images", action="store_true", help="clinical data only")
    s.add_argument("--workers", type=int, default=1, help="parallel processes for the CT images (default: 1)")
    s.add_argument("--quiet", action="store_true", help="no progress output")
    s.set_defaults(func=_simulate)

    r = add("run", "run a PRIME study from a YAML config", "prime-stats run sim/study.yaml")
    r.add_argument("config", help="StudyConfig YAML file")
    r.add_argument("--output", help="override the config's output folder")
    r.add_argument("--fast", action="store_true", help="small grids (a quick look, not for reporting)")
    r.add_argument("--no-report", action="store_true", help="skip the HTML/PDF report")
    r.add_argument("--workers", type=int, help="parallel workers (overrides models.n_jobs)")
    r.add_argument("--no-cache", action="store_true",
                   help="refit models, nested CV and SHAP even when <output>/cache holds them")
    r.add_argument("--quiet", action="store_true", help="no progress output")
    r.set_defaults(func=_run)

    e = add("extract", "extract dual-phase radiomics features from an image manifest",
            "prime-stats extract sim/manifest.csv --out features.parquet --workers 2")
    e.add_argument("manifest", help="CSV: patient_id, phase (AP/PVP), image, mask[, mask_observer2]")
    e.add_argument("--out", required=True, help="output Parquet file (log and settings written beside it)")
    e.add_argument("--settings", help="YAML file of radiomics settings (see prime_stats.imaging)")
    e.add_argument("--workers", type=int, default=1, help="parallel local processes (default: 1)")
    e.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786) instead of local processes")
    e.add_argument("--quiet", action="store_true", help="no progress output")
    e.set_defaults(func=_extract)

    pr = add("predict", "score new patients with the frozen models of a fitted study",
             "prime-stats predict sim/results new_clinical.csv --manifest new_manifest.csv --out pred.csv")
    pr.add_argument("study", help="output folder of 'prime-stats run'")
    pr.add_argument("clinical", help="clinical CSV/Parquet of the new patients (outcomes optional)")
    pr.add_argument("--manifest", help="image manifest (needed when the models use radiomics)")
    pr.add_argument("--out", default="predictions_new.csv", help="output CSV (default: %(default)s)")
    pr.add_argument("--name", default="new", help="label for the split column")
    pr.add_argument("--workers", type=int, default=1, help="parallel processes (default: 1)")
    pr.add_argument("--quiet", action="store_true", help="no progress output")
    pr.set_defaults(func=_predict)

    v = add("validate", "validate the frozen models on one or more external cohorts, each separately",
            "prime-stats validate sim/results --cohort centreC:c.csv:c_manifest.csv --cohort centreD:d.csv")
    v.add_argument("study", help="output folder of 'prime-stats run'")
    v.add_argument("--cohort", action="append", required=True, metavar="NAME:CLINICAL[:MANIFEST]",
                   help="an external cohort: its name, clinical CSV and (for radiomics models) image manifest; "
                        "repeat for several cohorts, each validated separately")
    v.add_argument("--out", default="validation_metrics.csv", help="output CSV (default: %(default)s)")
    v.add_argument("--engine", default="auto", choices=["auto", "python", "R"],
                   help="R (pROC/riskRegression/survival/rms), python, or auto = R when available")
    v.add_argument("--workers", type=int, default=1, help="parallel processes (default: 1)")
    v.set_defaults(func=_validate)

    sc = add("score", "validation table (AUC/C, AUC(t), Brier/IPA, calibration, net benefit) of a predictions CSV",
             """prime-stats score pred.csv --outcome response --model PRIME-R=prob_prime_r --thresholds 0.2,0.4
  prime-stats score pred.csv --time os_days --event os_event --times 365,730 \\
      --model PRIME-S=surv_prime_s_365,surv_prime_s_730 --survival-probabilities \\
      --risk-score PRIME-S=risk_prime_s --bootstrap 500 --out metrics.csv""")
    sc.add_argument("predictions", help="CSV with one row per patient: the outcome and the predictions")
    sc.add_argument("--outcome", help="binary outcome column (0/1) - for a response model")
    sc.add_argument("--time", help="follow-up time column - for a survival model (with --event)")
    sc.add_argument("--event", help="event column, 0 = censored / 1 = event (with --time)")
    sc.add_argument("--model", action="append", metavar="NAME=COLUMN[,COLUMN...]",
                    help="a model to score (repeat for several): binary - its predicted-probability column; "
                         "survival - one predicted-risk column per --times entry")
    sc.add_argument("--times", help="comma-separated prediction horizons for a survival outcome "
                                    "(default: 6, 12, 24 and 36 months in days, as the study)")
    sc.add_argument("--survival-probabilities", action="store_true",
                    help="the survival --model columns hold S(t|x) (the risk F = 1 - S is scored)")
    sc.add_argument("--risk-score", action="append", metavar="NAME=COLUMN",
                    help="risk score column of a survival model for Harrell's and Uno's C "
                         "(default: its predicted risk at the last horizon)")
    sc.add_argument("--thresholds", default="0.1,0.2,0.3,0.4,0.5",
                    help="comma-separated risk thresholds for net benefit ('' for none; default: %(default)s)")
    sc.add_argument("--engine", default="auto", choices=["auto", "python", "R"],
                    help="R (pROC/riskRegression/survival/rms), python, or auto = R when available")
    sc.add_argument("--ties", default="efron", choices=["efron", "breslow"],
                    help="tie handling of the Cox calibration slope (default: efron, as survival::coxph)")
    sc.add_argument("--bootstrap", type=int, default=0, metavar="B",
                    help="add percentile/BCa bootstrap rows from B resamples (0 = none)")
    sc.add_argument("--seed", type=int, default=1, help="random seed of the bootstrap (default: %(default)s)")
    sc.add_argument("--conf-level", type=float, default=0.95, help="confidence level (default: %(default)s)")
    sc.add_argument("--digits", type=int, default=3, help="decimals shown on screen (default: %(default)s)")
    sc.add_argument("--out", help="also write the full-precision table to this CSV")
    sc.add_argument("--show-warnings", action="store_true",
                    help="print the warnings of the statistical libraries (hidden by default)")
    sc.set_defaults(func=_score)

    rp = add("report", "write the TRIPOD+AI report (HTML and PDF) of a fitted study",
             "prime-stats report sim/results")
    rp.add_argument("study", help="output folder of 'prime-stats run'")
    rp.add_argument("--title", help="report title (default: the study's)")
    rp.add_argument("--include-identifiers", action="store_true",
                    help="show patient identifiers (off by default)")
    rp.set_defaults(func=_report)

    d = add("demo", "simulate the 246-patient study and run it end to end",
            "prime-stats demo --out out/demo")
    d.add_argument("--out", default="out/demo", help="output folder (default: %(default)s)")
    d.add_argument("--seed", type=int, default=2024, help="random seed of the simulation (default: %(default)s)")
    d.add_argument("--workers", type=int, default=2, help="parallel processes (default: %(default)s)")
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
