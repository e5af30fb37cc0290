"""Benchmark: validation statistics of prime-stats vs baselines in the same process.

A. DeLong AUC + 95% CI on n = 10,000 (binormal marker) vs a 2,000-replicate percentile bootstrap of
   scikit-learn's roc_auc_score, and vs pROC::ci.auc(method = "delong") timed inside R.
B. One full ``score_survival`` table (Harrell + Uno C, AUC(t), Brier(t), IPA, IBS, calibration at 4 times)
   on gbsg (n = 686, Cox model developed on rotterdam): Python engine vs R engine.
D. 1 - KM(t) at 50 horizons on n = 20,000 (the null model of the Brier score/IPA and of net benefit):
   the former ``overall.km_risk`` loop (O(n * event times) per horizon, kept here as the baseline) vs
   one ``_survcore.kaplan_meier_curve`` evaluated at all horizons.
C. Bootstrap CIs for Harrell's C, AUC(t) and Brier(t) at 4 times on gbsg with fixed predictions
   (B = 2,000 in Python) vs a loop of riskRegression::Score + survival::concordance on the same
   bootstrap samples (first ``B_R`` replicates, timed in R); per-replicate time ratio and the largest
   |difference| between the two engines' replicate estimates.
Writes benchmarks/results/evaluation.md.

    .venv/bin/python benchmarks/bench_evaluation.py [B_R]
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from prime_stats import rbridge
from prime_stats.evaluation._survcore import kaplan_meier_curve
from prime_stats.evaluation.discrimination import (CensoringKM, _auc_t_single, _pair_counts, auc_delong)
from prime_stats.evaluation.overall import _brier_t
from prime_stats.evaluation.score import score_survival

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "evaluation.md"
TIMES = [365.0, 730.0, 1095.0, 1825.0]


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def r_ok() -> bool:
    try:
        return bool(rbridge.run_r("TRUE"))
    except Exception:  # R or rpy2 missing
        return False


def r_engine_ok() -> bool:
    try:
        return rbridge.r_available(["survival", "riskRegression", "pec", "Hmisc"])
    except Exception:
        return False


def bench_delong(rows):
    rng = np.random.default_rng(2024)
    n = 10_000
    y = rng.binomial(1, 0.4, n)
    x = rng.normal(size=n) + 1.0 * y
    res, t_py = timed(lambda: auc_delong(y, x, engine="python"))

    def boot():
        aucs = np.empty(2000)
        for b in range(2000):
            i = rng.integers(0, n, n)
            aucs[b] = roc_auc_score(y[i], x[i])
        return np.quantile(aucs, [0.025, 0.975])
    ci_boot, t_boot = timed(boot)
    r = res.iloc[0]
    rows.append(dict(task="DeLong AUC + CI, n = 10,000", method="prime-stats auc_delong", seconds=t_py,
                     ratio="1", result=f"{r.estimate:.5f} ({r.lower:.5f}-{r.upper:.5f})"))
    rows.append(dict(task="DeLong AUC + CI, n = 10,000", method="bootstrap baseline (B = 2,000, sklearn)",
                     seconds=t_boot, ratio=f"{t_boot / t_py:.0f}x slower",
                     result=f"percentile CI {ci_boot[0]:.5f}-{ci_boot[1]:.5f}"))
    if r_ok():
        tmp = Path(tempfile.mkdtemp()) / "delong.csv"
        pd.DataFrame({"y": y, "x": x}).to_csv(tmp, index=False, float_format="%.17g")
        out = rbridge.run_r(f"""local({{d <- utils::read.csv("{tmp}")
            tm <- system.time(ci <- pROC::ci.auc(pROC::roc(d$y, d$x, levels = c(0, 1), direction = "<",
                                                           quiet = TRUE), method = "delong"))[["elapsed"]]
            c(tm, as.numeric(ci))}})""")
        rows.append(dict(task="DeLong AUC + CI, n = 10,000", method="pROC::ci.auc(delong) (time inside R)",
                         seconds=float(out[0]), ratio=f"{out[0] / t_py:.1f}x prime-stats time",
                         result=f"{out[2]:.5f} ({out[1]:.5f}-{out[3]:.5f})"))


def gbsg_predictions():
    d = rbridge.run_r("""local({
      suppressMessages(library(survival))
      r <- rotterdam; r$rfs <- pmax(r$recur, r$death); r$rfstime <- ifelse(r$recur == 1, r$rtime, r$dtime)
      f <- coxph(Surv(rfstime, rfs) ~ age + meno + size + grade + pmin(nodes, 20) + log1p(pgr) + log1p(er) + hormon,
                 data = r, x = TRUE)
      g <- gbsg; g$size <- cut(g$size, c(-Inf, 20, 50, Inf), labels = levels(r$size))
      data.frame(time = g$rfstime, event = g$status, lp = predict(f, newdata = g),
                 R = riskRegression::predictRisk(f, newdata = g, times = c(365, 730, 1095, 1825)))})""")
    return (d.time.to_numpy(float), d.event.to_numpy(int), d.lp.to_numpy(float),
            d[[c for c in d.columns if c.startswith("R.")]].to_numpy(float))


def bench_score(rows, t, e, lp, R):
    # Breslow slope ties: the ones the R twin of the calibration slope supports in every R build
    kw = dict(time=t, event=e, risks={"cox": R}, times=TIMES, risk_scores={"cox": lp}, ties="breslow")
    a, t_py = timed(lambda: score_survival(**kw, engine="python"))
    rows.append(dict(task="score_survival, gbsg n = 686, 4 times", method="engine = python", seconds=t_py,
                     ratio="1", result=f"{len(a)} rows"))
    if r_engine_ok():
        b, t_r = timed(lambda: score_survival(**kw, engine="R"))
        norm = lambda d, ibs: d.assign(method=d.method.str.replace(ibs, "IBS", regex=True)  # noqa: E731
                                       .str.replace(r", (Efron|Breslow) ties$", "", regex=True))
        m = norm(a, r"IPCW, step rule.*").merge(norm(b, r"pec::crps.*"), on=["model", "metric", "time", "method"])
        rows.append(dict(task="score_survival, gbsg n = 686, 4 times", method="engine = R (rpy2)", seconds=t_r,
                         ratio=f"{t_r / t_py:.1f}x slower",
                         result=f"{len(b)} rows; max abs diff vs python {np.abs(m.estimate_x - m.estimate_y).max():.1e}"))
    else:
        rows.append(dict(task="score_survival, gbsg n = 686, 4 times", method="engine = R (rpy2)",
                         seconds=np.nan, ratio="-", result="R engine unavailable (rbridge.r_available False)"))


def _km_risk_loop(time, event, t):
    """The former overall.km_risk: a Python loop over event times with two O(n) scans each."""
    ut = np.unique(time[(event == 1) & (time <= t)])
    s = 1.0
    for v in ut:
        s *= 1 - np.sum((time == v) & (event == 1)) / np.sum(time >= v)
    return 1.0 - s


def bench_km(rows):
    rng = np.random.default_rng(5)
    n = 20_000
    t = np.round(rng.exponential(1000, n))          # tied days, as in real follow-up data
    c = np.round(rng.uniform(0, 3000, n))
    time_, event = np.minimum(t, c), (t <= c).astype(int)
    hz = np.linspace(30, 2500, 50)
    old, t_old = timed(lambda: np.array([_km_risk_loop(time_, event, h) for h in hz]))
    new, t_new = timed(lambda: 1 - kaplan_meier_curve(time_, event).at(hz))
    rows.append(dict(task="1 - KM(t) at 50 horizons, n = 20,000", method="_survcore.kaplan_meier_curve",
                     seconds=t_new, ratio="1", result=f"max abs diff vs loop {np.abs(old - new).max():.1e}"))
    rows.append(dict(task="1 - KM(t) at 50 horizons, n = 20,000", method="former km_risk loop (baseline)",
                     seconds=t_old, ratio=f"{t_old / t_new:.0f}x slower", result=""))


def boot_python(t, e, lp, R, idx):
    out = np.empty((len(idx), 1 + 2 * len(TIMES)))
    for b, i in enumerate(idx):
        tb, eb = t[i], e[i]
        km = CensoringKM(tb, eb)
        c, d, ti = _pair_counts(tb, eb, lp[i], np.ones(len(i)))
        out[b, 0] = (c.sum() + 0.5 * ti.sum()) / (c.sum() + d.sum() + ti.sum())
        for k, h in enumerate(TIMES):
            out[b, 1 + k] = _auc_t_single(tb, eb, R[i, k], h, km)[0]
            out[b, 1 + len(TIMES) + k] = _brier_t(tb, eb, R[i, k], h, km)[0]
    return out


def bench_bootstrap(rows, t, e, lp, R, B_R):
    rng = np.random.default_rng(11)
    idx = [rng.integers(0, len(t), len(t)) for _ in range(2000)]
    est, t_py = timed(lambda: boot_python(t, e, lp, R, idx))
    ci = np.quantile(est, [0.025, 0.975], axis=0)
    rows.append(dict(task="bootstrap B = 2,000: C + AUC(t) + Brier(t) at 4 times, gbsg",
                     method="prime-stats (numpy)", seconds=t_py, ratio="1",
                     result=f"C {est[:, 0].mean():.4f} (95% {ci[0, 0]:.4f}-{ci[1, 0]:.4f})"))
    if not r_ok():
        return
    tmp = Path(tempfile.mkdtemp())
    pd.DataFrame({"time": t, "event": e, "lp": lp, **{f"R{k}": R[:, k] for k in range(4)}}).to_csv(
        tmp / "d.csv", index=False, float_format="%.17g")
    pd.DataFrame(np.column_stack(idx[:B_R]) + 1).to_csv(tmp / "idx.csv", index=False)
    out = rbridge.run_r(f"""local({{
      d <- utils::read.csv("{tmp / 'd.csv'}"); ix <- as.matrix(utils::read.csv("{tmp / 'idx.csv'}"))
      fenv <- new.env(); fenv$Surv <- survival::Surv; fenv$Hist <- prodlim::Hist
      fo <- stats::as.formula("Surv(time, event) ~ 1", env = fenv)
      res <- matrix(NA_real_, ncol(ix), 9)
      tm <- system.time(for (b in seq_len(ncol(ix))) {{
        db <- d[ix[, b], ]
        cc <- survival::concordance(survival::Surv(time, event) ~ lp, data = db, reverse = TRUE)$concordance
        s <- riskRegression::Score(list(m = as.matrix(db[, paste0("R", 0:3)])), formula = fo, data = db,
                                   times = c(365, 730, 1095, 1825), metrics = c("auc", "brier"),
                                   se.fit = FALSE, null.model = FALSE, cens.model = "km")
        res[b, ] <- c(cc, s$AUC$score$AUC, s$Brier$score$Brier)
      }})[["elapsed"]]
      list(time = tm, res = as.vector(res))}})""")
    r_est = np.asarray(out["res"]).reshape(9, B_R).T
    per_r, per_py = float(out["time"]) / B_R, t_py / 2000
    rows.append(dict(task="bootstrap B = 2,000: C + AUC(t) + Brier(t) at 4 times, gbsg",
                     method=f"loop of riskRegression::Score + survival::concordance ({B_R} replicates, "
                            "extrapolated to 2,000)", seconds=per_r * 2000,
                     ratio=f"{per_r / per_py:.1f}x slower",
                     result=f"max abs diff on the same {B_R} samples: {np.abs(r_est - est[:B_R]).max():.1e}"))


def main() -> int:
    B_R = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    rows: list[dict] = []
    bench_delong(rows)
    bench_km(rows)
    if r_ok():
        t, e, lp, R = gbsg_predictions()
        bench_score(rows, t, e, lp, R)
        bench_bootstrap(rows, t, e, lp, R, B_R)
    df = pd.DataFrame(rows)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# Evaluation benchmarks", "",
             "Generated by `benchmarks/bench_evaluation.py` (2 shared cores; wall-clock seconds; ratios are "
             "against the prime-stats row of the same task, measured in the same process).", "",
             "| task | method | seconds | ratio | result |", "|---|---|---|---|---|"]
    for r in df.itertuples(index=False):
        lines.append(f"| {r.task} | {r.method} | {r.seconds:.3f} | {r.ratio} | {r.result} |")
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
