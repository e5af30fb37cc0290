"""PRIME-S learners: risk scores, survival functions, and a C-index scorer that really ranks."""
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sksurv.datasets import load_gbsg2, load_whas500
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.metrics import concordance_index_censored
from sksurv.util import Surv

from prime_stats.evaluation._survcore import step_at, survival_at
from prime_stats.features import survival_arrays, survival_folds
from prime_stats.models import (SURVIVAL_LEARNERS, CoxCalibratedSurvivalSVM, ModalitySurvival,
                                cindex_scorer, default_grid, make_survival_pipeline,
                                tune)


@pytest.fixture(scope="module")
def whas():
    X, y = load_whas500()
    return X.select_dtypes("number").astype(float), y


@pytest.fixture(scope="module")
def gbsg():
    X, y = load_gbsg2()
    return X.select_dtypes("number").astype(float), y


def test_cindex_scorer_matches_lifelines(whas):
    from lifelines.utils import concordance_index
    X, y = whas
    model = CoxPHSurvivalAnalysis(alpha=1.0).fit(X, y)
    event, time = survival_arrays(y)
    c = cindex_scorer(model, X, y)
    # lifelines takes predictions that increase with survival time
    assert c == pytest.approx(concordance_index(time, -model.predict(X), event), abs=1e-10)
    assert 0.7 < c < 0.85


def test_cindex_scorer_refuses_nan_and_eventless_folds(whas):
    X, y = whas

    class NaNModel:
        def predict(self, X_):
            return np.full(len(X_), np.nan)

    with pytest.raises(ValueError, match="non-finite"):
        cindex_scorer(NaNModel(), X, y)
    censored = Surv.from_arrays(np.zeros(len(y), bool), survival_arrays(y)[1])
    with pytest.raises(ValueError, match="no events"):
        cindex_scorer(CoxPHSurvivalAnalysis().fit(X, y), X, censored)


def test_survival_tuning_ranks_real_cindices(gbsg):
    """The grid's first point is a near-constant forest; the search must not fall back to it, and
    the reported CV score must be the mean held-out Harrell C recomputed by hand."""
    X, y = gbsg
    grid = {"model__min_samples_leaf": [300, 10], "model__n_estimators": [30]}
    pipe = make_survival_pipeline("rsf", "clinical", random_state=0)
    gs = tune(pipe, grid, X, y, cv=3, random_state=4)
    scores = gs.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(scores)) and scores[1] > scores[0]
    assert gs.best_params_["model__min_samples_leaf"] == 10
    event, time = survival_arrays(y)
    manual = []
    for tr, va in survival_folds(y, 3, 4):
        m = clone(pipe).set_params(**gs.best_params_).fit(X.iloc[tr], y[tr])
        manual.append(concordance_index_censored(event[va], time[va], m.predict(X.iloc[va]))[0])
    assert gs.best_score_ == pytest.approx(np.mean(manual), rel=1e-10)


def test_survival_at_evaluates_step_functions(gbsg):
    X, y = gbsg
    model = CoxPHSurvivalAnalysis().fit(X, y)
    fns = model.predict_survival_function(X.iloc[:3])
    t_first, t_last = fns[0].x[0], fns[0].x[-1]
    times = np.array([0.0, t_first - 1, t_first, fns[0].x[10], t_last, t_last + 1000])
    S = survival_at(fns, times)
    assert np.all(S[:, :2] == 1.0)                                   # before the first event
    np.testing.assert_allclose(S[:, 2], [f.y[0] for f in fns])
    np.testing.assert_allclose(S[:, 3], [f.y[10] for f in fns])
    np.testing.assert_allclose(S[:, 5], S[:, 4])                     # carried beyond the last time
    assert np.all(np.diff(S, axis=1) <= 0)
    # unsorted times give the same values
    perm = np.array([3, 0, 5, 1, 4, 2])
    np.testing.assert_allclose(survival_at(fns, times[perm]), S[:, perm])
    # the same rule on the array form (n x unique_times_), several functions at once
    S_array = model.predict_survival_function(X.iloc[:3], return_array=True)
    np.testing.assert_array_equal(step_at(model.unique_times_, S_array, times, 1.0), S)


def test_svm_gets_a_cox_breslow_survival_function(whas):
    X, y = whas
    Xz = (X - X.mean()) / X.std()
    svm = CoxCalibratedSurvivalSVM(alpha=0.1, random_state=0).fit(Xz, y)
    risk = svm.predict(Xz)
    assert cindex_scorer(svm, Xz, y) > 0.7                          # risk orientation: higher = worse
    z = ((risk - risk.mean()) / risk.std()).reshape(-1, 1)
    ref = CoxPHSurvivalAnalysis(ties="breslow").fit(z, y)
    assert svm.calibrator_.coef_[0] == pytest.approx(ref.coef_[0], rel=1e-8) and ref.coef_[0] > 0
    times = np.quantile(survival_arrays(y)[1], [0.1, 0.3, 0.5, 0.7])
    S = survival_at(svm.predict_survival_function(Xz), times)
    np.testing.assert_allclose(S, survival_at(ref.predict_survival_function(z), times), rtol=1e-10)
    assert np.all((S >= 0) & (S <= 1)) and np.all(np.diff(S, axis=1) <= 0)
    hi, lo = np.argmax(risk), np.argmin(risk)
    assert np.all(S[hi] < S[lo])


@pytest.mark.parametrize("learner", SURVIVAL_LEARNERS)
def test_each_survival_pipeline_predicts_risk_and_survival(gbsg, learner):
    X, y = gbsg
    tr, te = np.arange(len(y)) % 3 != 0, np.arange(len(y)) % 3 == 0
    pipe = make_survival_pipeline(learner, "clinical", random_state=0)
    pipe.set_params(**{k: v[0] for k, v in default_grid(learner, fast=True).items()})
    pipe.fit(X[tr], y[tr])
    assert cindex_scorer(pipe, X[te], y[te]) > 0.6
    S = survival_at(pipe.predict_survival_function(X[te]), [365, 730, 1825])
    assert np.all((S >= 0) & (S <= 1)) and np.all(np.diff(S, axis=1) <= 0)
    assert set(pipe[:-1].get_feature_names_out()) <= set(X.columns)


def test_pbc_real_messy_liver_data(r_engine):
    """R survival's pbc (Mayo PBC trial): real missing values, a factor, liver labs."""
    # numbers as doubles (NA -> NaN), the sex factor as text
    pbc = pd.DataFrame(r_engine.run_r(
        "as.data.frame(lapply(survival::pbc, function(v) if (is.numeric(v)) as.numeric(v) "
        "else as.character(v)), stringsAsFactors = FALSE)"))
    y = Surv.from_arrays(pbc["status"].to_numpy() == 2, pbc["time"].astype(float).to_numpy())
    feats = ["age", "sex", "ascites", "hepato", "spiders", "edema", "bili", "chol", "albumin",
             "copper", "alk.phos", "ast", "trig", "platelet", "protime", "stage"]
    tr = np.arange(len(y)) % 4 != 0
    # the clinical table is encoded once, on the training rows, before any model (as the study does)
    from prime_stats.features import ClinicalEncoder
    X = ClinicalEncoder().fit(pbc.loc[tr, feats]).transform(pbc[feats])
    m = ModalitySurvival(list(X.columns), (), "clinical", learners=("gbsa", "fast_svm"), fast=True, cv=5,
                         random_state=0).fit(X[tr], y[tr])
    rep = m.selection_report_
    miss = rep[rep.step == "MissingnessFilter"].set_index("feature")
    assert not miss.loc["chol", "kept"] and not miss.loc["trig", "kept"]       # > 30 % missing
    assert miss.loc["copper", "kept"]                                           # 26 % missing
    assert "bili" in set(m.selected_features_.feature)
    c = m.score(X[~tr], y[~tr])
    assert c > 0.75, c     # the Mayo risk score reaches ~0.8 on pbc
    # S(t|x) as scikit-survival: step functions of the chosen pipeline, or the array on unique_times_
    fns = m.predict_survival_function(X[~tr].iloc[:5])
    arr = m.predict_survival_function(X[~tr].iloc[:5], return_array=True)
    assert arr.shape == (5, len(m.unique_times_))
    np.testing.assert_array_equal(np.vstack([f.y for f in fns]), arr)
    np.testing.assert_array_equal(fns[0].x, m.unique_times_)
    best = m.best_estimator_.predict_survival_function(X[~tr].iloc[:5], return_array=True)
    np.testing.assert_array_equal(arr, best)
