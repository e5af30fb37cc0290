"""What the development data could support, recorded for the report's summary and limitations: events
per candidate parameter with Riley et al.'s minimum sample size (table ``sample_size``) and how missing
predictor values were imputed, read from the fitted pipelines (note ``imputation``)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..evaluation.samplesize import sample_size_binary, sample_size_survival
from ..evaluation.score import DAYS_PER_MONTH

DAYS_PER_YEAR = 12 * DAYS_PER_MONTH


def sample_size_table(n_parameters: int, y_resp: pd.Series | None, y_surv, times) -> pd.DataFrame:
    """Per endpoint, the training split's events per candidate parameter beside Riley et al.'s minimum
    sample size (pmsampsize criteria, conservative anticipated Nagelkerke R2 = 0.15), from the training
    split's response rate, or its event rate per person-year, mean follow-up and the last horizon."""
    frames = []
    if y_resp is not None and 0 < y_resp.mean() < 1:
        t = sample_size_binary(n_parameters, float(y_resp.mean()))
        frames.append(t.assign(endpoint="response", n_available=len(y_resp), events_available=int(y_resp.sum())))
    if y_surv is not None:
        event = np.asarray(y_surv[y_surv.dtype.names[0]], bool)
        years = np.asarray(y_surv[y_surv.dtype.names[1]], float) / DAYS_PER_YEAR
        if event.sum() > 0:
            t = sample_size_survival(n_parameters, rate=event.sum() / years.sum(),
                                     timepoint=float(times[-1]) / DAYS_PER_YEAR, meanfup=float(years.mean()))
            frames.append(t.assign(endpoint="survival", n_available=len(event), events_available=int(event.sum())))
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    out["epp_available"] = out["events_available"] / out["parameters"]
    lead = ["endpoint", "criterion", "n", "n_available", "events", "events_available", "parameters", "epp",
            "epp_available"]
    return out[lead + [c for c in out.columns if c not in lead]]


def imputation_methods(models: dict) -> list[str]:
    """The distinct imputers inside the fitted models (e.g. ``SimpleImputer(strategy='median')``),
    found by walking their fitted attributes."""
    from sklearn.impute import SimpleImputer

    found, seen, queue = set(), set(), [models]
    for _ in range(10):                      # breadth first: each object at its shallowest depth
        nxt = []
        for obj in queue:
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if isinstance(obj, SimpleImputer):
                found.add(f"SimpleImputer(strategy={obj.strategy!r})")
            elif isinstance(obj, dict):
                nxt += list(obj.values())
            elif isinstance(obj, (list, tuple)):
                nxt += list(obj)
            elif type(obj).__module__.split(".")[0] in ("prime_stats", "sklearn", "sksurv") and \
                    hasattr(obj, "__dict__"):
                nxt += list(vars(obj).values())
        queue = nxt
    return sorted(found)


def record(art, models: dict, n_parameters: int, y_resp, y_surv, times) -> None:
    """Table ``sample_size`` and note ``imputation`` for the report."""
    art.table("sample_size", sample_size_table(n_parameters, y_resp, y_surv, times))
    imputers = imputation_methods(models)
    if imputers:
        art.notes["imputation"] = (", ".join(imputers) + " inside each model's pipeline, fitted on the training "
                                   "split")
