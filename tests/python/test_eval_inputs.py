"""One input contract: every bad input to every public evaluation function gives the catalogue's error
(or a documented NaN), never a silent number. Table-driven on real data (lifelines' rossi, sklearn's
breast cancer)."""
import re

import numpy as np
import pandas as pd
import pytest
from lifelines.datasets import load_rossi
from sklearn.datasets import load_breast_cancer
from sksurv.util import Surv

from prime_stats.evaluation import calibration as cal
from prime_stats.evaluation import decision as dec
from prime_stats.evaluation import discrimination as disc
from prime_stats.evaluation import overall as ov
from prime_stats.evaluation import score
from prime_stats.evaluation import survival as sv
from prime_stats.evaluation.inputs import MESSAGES, SurvivalOutcome, as_survival

ROSSI = load_rossi()
T = ROSSI.week.to_numpy(float)
E = ROSSI.arrest.to_numpy(int)
LP = (0.08 * ROSSI.prio - 0.05 * ROSSI.age + 0.4 * ROSSI.race).to_numpy(float)
F26 = 1 - np.exp(-0.15 * np.exp(LP - LP.mean()))            # predicted risk by week 26
F40 = 1 - np.exp(-0.25 * np.exp(LP - LP.mean()))
R2 = np.column_stack([F26, F40])
BC = load_breast_cancer(as_frame=True).frame
Y = BC.target.to_numpy()
P = (1 / (1 + np.exp(-(19.8 - 1.05 * BC["mean radius"] - 0.22 * BC["mean texture"])))).to_numpy()


def _pattern(key: str) -> str:
    """A regex for a whole catalogue message: its literal text with every field matching anything."""
    return ".*".join(re.escape(chunk) for chunk in re.split(r"\{[^}]*\}", MESSAGES[key]))


# ---------------------------------------------------------------------------------------- survival
SURVIVAL_FUNCTIONS = {
    "concordance_index": lambda t, e, r: disc.concordance_index(t, e, r[:, 1], engine="python"),
    "time_dependent_auc": lambda t, e, r, times=(26.0, 40.0): disc.time_dependent_auc(t, e, r, times,
                                                                                        engine="python"),
    "brier_survival": lambda t, e, r, times=(26.0, 40.0): ov.brier_survival(t, e, r, times, engine="python"),
    "integrated_brier_score": lambda t, e, r, times=(26.0, 40.0): ov.integrated_brier_score(
        t, e, r, times, engine="python"),
    "calibration_survival": lambda t, e, r, times=(26.0, 40.0): cal.calibration_survival(
        t, e, r, times, engine="python"),
    "net_benefit_survival": lambda t, e, r, times=(40.0,): dec.net_benefit_survival(
        t, e, r[:, 1], times, thresholds=[0.1, 0.2], engine="python"),
    "score_survival": lambda t, e, r, times=(26.0, 40.0): score.score_survival(
        t, e, {"m": r}, times, engine="python"),
    "kaplan_meier": lambda t, e, r: sv.kaplan_meier(t, e, times=[26.0], engine="python"),
    "logrank_test": lambda t, e, r: sv.logrank_test(t, e, (r[:, 1] > np.median(r[:, 1])).astype(int),
                                                    engine="python"),
    "numbers_at_risk": lambda t, e, r: sv.numbers_at_risk(t, e, times=[0.0, 26.0], engine="python"),
    "median_followup": lambda t, e, r: sv.median_followup(t, e, engine="python"),
    "restricted_mean_survival": lambda t, e, r: sv.restricted_mean_survival(t, e, tau=40.0, engine="python"),
}
USES_RISK = {"concordance_index", "time_dependent_auc", "brier_survival", "integrated_brier_score",
             "calibration_survival", "net_benefit_survival", "score_survival"}
PROBABILITY = USES_RISK - {"concordance_index", "time_dependent_auc"}
HORIZONS = USES_RISK - {"concordance_index"}

SURVIVAL_CASES = [  # name, (time, event, risk) builder, catalogue key, which functions
    ("time NaN", lambda: (np.r_[np.nan, T[1:]], E, R2), "non_finite", None),
    ("time negative", lambda: (np.r_[-1.0, T[1:]], E, R2), "negative_time", None),
    ("time text", lambda: (np.r_[["x"], T[1:].astype(str)], E, R2), "not_numeric", None),
    ("event 1/2", lambda: (T, E + 1, R2), "event_coding_12", None),
    ("event 3", lambda: (T, np.r_[3, E[1:]], R2), "event_coding", None),
    ("event NaN", lambda: (T, np.r_[np.nan, E[1:]], R2), "non_finite", None),
    ("event shorter", lambda: (T, E[:-1], R2), "length", None),
    ("all censored", lambda: (T, np.zeros_like(E), R2), "no_events",
     set(SURVIVAL_FUNCTIONS) - {"kaplan_meier", "numbers_at_risk", "median_followup", "restricted_mean_survival"}),
    ("no censoring", lambda: (T, np.ones_like(E), R2), "no_censored", {"median_followup"}),
    ("risk NaN", lambda: (T, E, np.where(np.arange(len(T))[:, None] == 4, np.nan, R2)), "non_finite", USES_RISK),
    ("risk shorter", lambda: (T, E, R2[:-1]), None, USES_RISK),
    ("risk > 1", lambda: (T, E, R2 * 3), "probability", PROBABILITY),
    ("risk logits", lambda: (T, E, np.column_stack([LP, LP])), "probability", PROBABILITY),
]


@pytest.mark.parametrize("fname", sorted(SURVIVAL_FUNCTIONS))
@pytest.mark.parametrize("case", SURVIVAL_CASES, ids=[c[0] for c in SURVIVAL_CASES])
def test_bad_survival_input_raises_catalogue_message(fname, case):
    label, build, key, which = case
    if which is not None and fname not in which:
        pytest.skip(f"{label!r} does not apply to {fname}")
    t, e, r = build()
    pattern = _pattern(key) if key else r"length|shape"
    with pytest.raises(ValueError, match=pattern):
        SURVIVAL_FUNCTIONS[fname](t, e, r)


@pytest.mark.parametrize("fname", sorted(HORIZONS))
def test_horizons_beyond_follow_up_and_unsorted_grids(fname):
    f = SURVIVAL_FUNCTIONS[fname]
    with pytest.raises(ValueError, match=_pattern("beyond_followup")):
        f(T, E, R2, times=(26.0, 60.0) if fname != "net_benefit_survival" else (60.0,))
    if fname != "net_benefit_survival":
        with pytest.raises(ValueError, match=_pattern("times_increasing")):
            f(T, E, R2, times=(40.0, 26.0))


def test_documented_nan_and_no_events_behaviour():
    km = sv.kaplan_meier(T, np.zeros_like(E), times=[26.0], engine="python")
    assert np.isnan(km.medians["median"].iloc[0]) and km.at_times.surv.iloc[0] == 1.0   # documented
    # net benefit: a test-positive group whose follow-up ends before the horizon gives NaN (dcurves)
    short = np.where(R2[:, 1] > np.quantile(R2[:, 1], 0.95), np.minimum(T, 10.0), T)
    nb = dec.net_benefit_survival(short, np.where(short < T, 0, E), R2[:, 1], [40.0],
                                  thresholds=[np.quantile(R2[:, 1], 0.97)], engine="python")
    assert nb.loc[nb.model == "model", "net_benefit"].isna().all()


def test_one_hint_for_survival_1_2_status_names_the_column():
    d = ROSSI.assign(arrest=ROSSI.arrest + 1)
    with pytest.raises(ValueError, match=r"column 'arrest' must be coded 0 .* pass arrest - 1"):
        sv.kaplan_meier("week", "arrest", data=d, engine="python")
    with pytest.raises(ValueError, match=r"pass event - 1"):
        disc.concordance_index(T, E + 1, LP, engine="python")


# ------------------------------------------------------------------------------------------ binary
BINARY_FUNCTIONS = {
    "auc_delong": lambda y, p: disc.auc_delong(y, p, engine="python"),
    "delong_test": lambda y, p: disc.delong_test(y, p, np.sqrt(np.clip(p, 0, None)), engine="python"),
    "brier_binary": lambda y, p: ov.brier_binary(y, p, engine="python"),
    "calibration_binary": lambda y, p: cal.calibration_binary(y, p, engine="python"),
    "net_benefit": lambda y, p: dec.net_benefit(y, p, [0.2], engine="python"),
    "score_binary": lambda y, p: score.score_binary(y, {"m": p}, engine="python"),
}
PROB_BINARY = set(BINARY_FUNCTIONS) - {"auc_delong", "delong_test"}
BINARY_CASES = [
    ("y 1/2", lambda: (Y + 1, P), "binary_coding_12", None),
    ("y 0/1/2", lambda: (np.r_[2, Y[1:]], P), "binary_coding", None),
    ("y NaN", lambda: (np.r_[np.nan, Y[1:]], P), "non_finite", None),
    ("one class", lambda: (np.ones_like(Y), P), "single_class", None),
    ("p NaN", lambda: (Y, np.r_[P[:5], np.nan, P[6:]]), "non_finite", None),
    ("p shorter", lambda: (Y, P[:-1]), None, None),
    ("p > 1", lambda: (Y, P * 100), "probability", PROB_BINARY),
    ("p logits", lambda: (Y, np.log(P / (1 - P))), "probability", PROB_BINARY),
]


@pytest.mark.parametrize("fname", sorted(BINARY_FUNCTIONS))
@pytest.mark.parametrize("case", BINARY_CASES, ids=[c[0] for c in BINARY_CASES])
def test_bad_binary_input_raises_catalogue_message(fname, case):
    label, build, key, which = case
    if which is not None and fname not in which:
        pytest.skip(f"{label!r} does not apply to {fname}")
    y, p = build()
    with pytest.raises(ValueError, match=_pattern(key) if key else "length"):
        BINARY_FUNCTIONS[fname](y, p)


# ------------------------------------------------------------------------------ one outcome, any form
def test_every_outcome_form_gives_the_same_numbers():
    ref = disc.concordance_index(T, E, LP, engine="python")
    y = Surv.from_arrays(E.astype(bool), T)
    forms = [disc.concordance_index(y, LP, engine="python"),                 # scikit-survival array
             disc.concordance_index(y, risk=LP, engine="python"),
             disc.concordance_index(as_survival(T, E), LP, engine="python"),  # SurvivalOutcome
             disc.concordance_index("week", "arrest", LP, data=ROSSI, engine="python"),  # columns
             disc.concordance_index(ROSSI.week, ROSSI.arrest.astype(bool), LP, engine="python")]  # Series
    for f in forms:
        pd.testing.assert_frame_equal(f, ref)
    km_a = sv.kaplan_meier(y, engine="python").medians
    km_b = sv.kaplan_meier("week", "arrest", data=ROSSI, engine="python").medians
    pd.testing.assert_frame_equal(km_a, km_b)
    o = as_survival(y)
    assert isinstance(o, SurvivalOutcome) and "events=114" in repr(o)
    np.testing.assert_array_equal(o.to_structured()["time"], T)
    with pytest.raises(ValueError, match="not both"):
        as_survival(y, E)
    with pytest.raises(ValueError, match="structured survival outcome"):
        as_survival(np.zeros(3, dtype=[("a", float), ("b", float)]))
    with pytest.raises(KeyError, match="column 'weeks' not found"):
        disc.concordance_index("weeks", "arrest", LP, data=ROSSI)
    with pytest.raises(TypeError, match=r"the data come last, as a keyword"):   # the former data-first order
        disc.concordance_index(ROSSI, "week", "arrest")
