"""Late fusion (PRIME-R), BMA (PRIME-S), the nested-CV comparison table and ground truth on the
simulated PRIME study."""
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split
from sksurv.datasets import load_gbsg2
from sksurv.util import Surv

from prime_stats.features import survival_arrays
from prime_stats.fusion import CoxCalibration, PrimeR, PrimeS, compare_modalities


@pytest.fixture(scope="module")
def bc_split():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    clin = [c for c in X.columns if c.startswith("mean")]
    rad = [c for c in X.columns if not c.startswith("mean")]
    Xtr, Xte, ytr, yte = train_test_split(X, y.to_numpy(), test_size=0.4, stratify=y, random_state=0)
    return Xtr, Xte, ytr, yte, clin, rad


@pytest.fixture(scope="module")
def prime_r(bc_split):
    Xtr, Xte, ytr, yte, clin, rad = bc_split
    return PrimeR(clin, rad, learners=("stochastic_gb", "adaboost"), cv=3, fast=True).fit(Xtr, ytr)


@pytest.fixture(scope="module")
def gbsg_split():
    X, y = load_gbsg2()
    X = X.select_dtypes("number").astype(float)
    tr = np.arange(len(y)) % 3 != 0
    return X[tr], X[~tr], y[tr], y[~tr]


@pytest.fixture(scope="module")
def prime_s(gbsg_split):
    Xtr, Xte, ytr, yte = gbsg_split
    return PrimeS(["age", "tsize", "pnodes"], ["progrec", "estrec"], learners=("gbsa", "fast_svm"),
                  cv=3, fast=True).fit(Xtr, ytr)


def test_meta_classifier_is_trained_on_repeated_cv_out_of_fold_probabilities(prime_r, bc_split):
    """The stacker's rows are the chosen pipelines' out-of-fold probabilities from 3 repeats of
    3-fold CV on splits other than the tuning split (cross_val_predict with the same folds), and the
    stacker is the L2-penalised logistic regression on their logits (sklearn, C = 1 / (penalty *
    sum of row weights)) when no weight sits on its bound."""
    from prime_stats.models.selection import repeated_oof
    Xtr, Xte, ytr, yte, clin, rad = bc_split
    R = prime_r.oof_repeats
    assert prime_r.oof_repeats_.shape == (R, len(ytr), 2)
    tuning = prime_r.bases_["clinical"].results_[prime_r.chosen_learners_["clinical"]].folds_
    for j, (kind, base) in enumerate(prime_r.bases_.items()):
        for r in range(R):
            seed = int(np.random.SeedSequence([0, 7919, r]).generate_state(1)[0])
            folds = StratifiedKFold(3, shuffle=True, random_state=seed)
            oof = cross_val_predict(clone(base.best_estimator_), Xtr[base.columns_], ytr, cv=folds,
                                    method="predict_proba")[:, 1]
            np.testing.assert_allclose(prime_r.oof_repeats_[r, :, j], oof)
            assert not all(np.array_equal(np.sort(a[1]), np.sort(b[1]))
                           for a, b in zip(folds.split(Xtr, ytr), tuning))   # not the tuning folds
        np.testing.assert_allclose(prime_r.oof_proba_[kind], prime_r.oof_repeats_[:, :, j].mean(axis=0))
        assert not np.allclose(prime_r.oof_proba_[kind], base.predict_proba(Xtr)[:, 1])
    P = np.clip(prime_r.oof_repeats_.reshape(R * len(ytr), 2), 1e-3, 1 - 1e-3)
    lam = prime_r.meta_.penalty_
    assert lam in (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 0.0)
    C = np.inf if lam == 0 else 1 / (lam * len(ytr))      # row weights 1/R over R*n rows sum to n
    ref = LogisticRegression(C=C, max_iter=10000, tol=1e-12).fit(np.log(P / (1 - P)), np.tile(ytr, R),
                                                                  sample_weight=np.full(len(P), 1 / R))
    assert (ref.coef_ > 0).all()
    tab = prime_r.fusion_weights_
    np.testing.assert_allclose(tab.coefficient, np.r_[ref.intercept_, ref.coef_.ravel()], rtol=1e-4, atol=1e-6)
    assert (tab.lower <= tab.coefficient).all() and (tab.coefficient <= tab.upper).all()
    np.testing.assert_allclose(prime_r.weights_ci_, tab[["lower", "upper"]].to_numpy()[1:])
    assert prime_r.collapsed_ is False and tab.share.iloc[1:].sum() == pytest.approx(1.0)


def test_collapsed_fusion_is_flagged(prime_s, gbsg_split, caplog):
    """A base whose out-of-fold probabilities are worse than noise gets weight 0 from the ridge
    non-negative stacker, so the other modality carries all the weight: flagged as collapsed. A
    modality holding >= 0.95 of the summed weight is flagged too; PRIME-S logs a warning exactly when
    it collapses."""
    import logging

    from prime_stats.fusion import NonNegativeStacker, _collapse
    rng = np.random.default_rng(4)
    n = 80
    lp = rng.normal(size=n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-1.5 * lp))).astype(int)
    good = 1 / (1 + np.exp(-(lp + rng.normal(scale=0.8, size=n))))
    bad = 1 / (1 + np.exp(-(-0.6 * (y - 0.5) + rng.normal(size=n))))
    m = NonNegativeStacker(penalty="cv").fit(np.column_stack([good, bad]), y)
    assert m.coef_[0, 1] == 0.0 and m.coef_[0, 0] > 0 and m.penalty_ in (0.0, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
    collapsed, note = _collapse(m.coef_.ravel(), ["clinical", "radiomics"], ["clinical", "radiomics"])
    assert collapsed and "clinical carries 1.000" in note
    assert _collapse([0.5, 0.3, 0.2], ["a/x", "a/y", "b/x"], ["a", "a", "b"]) == (False, "")
    collapsed, note = _collapse([0.6, 0.36, 0.04], ["a/x", "a/y", "b/x"], ["a", "a", "b"])
    assert collapsed and "onto the a modality (0.960" in note
    Xtr, _, ytr, _ = gbsg_split
    with caplog.at_level(logging.WARNING, logger="prime_stats.fusion"):
        bic = clone(prime_s).set_params(averaging="bic_softmax")._average(Xtr, ytr, prime_s.bases_)
    assert bic.collapsed_ == ("PRIME-S: fusion collapsed" in caplog.text)
    assert bic.collapsed_ == (bic.weights_.max() >= 0.95 or
                              bic.weights_table_.groupby("feature_kind").weight.sum().max() >= 0.95)


def test_stacker_gives_an_uninformative_base_zero_weight():
    """Non-negative stacking (SuperLearner method.NNloglik): a base whose probabilities are
    anti-correlated noise gets weight exactly 0; the other weight is then the one-variable logistic
    fit, and the Karush-Kuhn-Tucker condition holds (the likelihood cannot rise by a positive weight)."""
    from prime_stats.fusion import NonNegativeStacker
    rng = np.random.default_rng(4)
    n = 80
    lp = rng.normal(size=n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-1.5 * lp))).astype(int)
    good = 1 / (1 + np.exp(-(lp + rng.normal(scale=0.8, size=n))))
    bad = 1 / (1 + np.exp(-(-0.6 * (y - 0.5) + rng.normal(size=n))))   # worse than noise
    P = np.column_stack([good, bad])
    m = NonNegativeStacker().fit(P, y)
    free = LogisticRegression(C=np.inf, max_iter=5000, tol=1e-10).fit(np.log(P / (1 - P)), y)
    assert free.coef_[0, 1] < 0 and m.coef_[0, 1] == 0.0
    one = LogisticRegression(C=np.inf, max_iter=5000, tol=1e-10).fit(np.log(good / (1 - good))[:, None], y)
    np.testing.assert_allclose([m.intercept_[0], m.coef_[0, 0]], [one.intercept_[0], one.coef_[0, 0]], rtol=1e-5)
    p = m.predict_proba(P)[:, 1]
    grad_bad = np.sum((p - y) * np.log(bad / (1 - bad)))     # d(-loglik)/dw_bad at w_bad = 0
    assert grad_bad >= 0
    assert m.predict(P).tolist() == (p > 0.5).astype(int).tolist()


def test_late_fusion_is_not_worse_than_the_better_modality(prime_r, bc_split):
    Xtr, Xte, ytr, yte, clin, rad = bc_split
    fused = roc_auc_score(yte, prime_r.predict_proba(Xte)[:, 1])
    singles = prime_r.base_proba(Xte).apply(lambda p: roc_auc_score(yte, p))
    assert fused >= singles.max() - 0.01, (fused, singles.to_dict())
    assert set(prime_r.chosen_learners_) == {"clinical", "radiomics"}
    assert set(prime_r.selected_features_.feature_kind) == {"clinical", "radiomics"}
    assert set(prime_r.selection_report_.feature_kind) == {"clinical", "radiomics"}
    assert prime_r.tuning_table_.groupby("feature_kind").chosen.sum().tolist() == [1, 1]


def test_prime_r_errors_name_missing_columns(prime_r, bc_split):
    Xtr, Xte, *_ = bc_split
    with pytest.raises(KeyError, match="worst area"):
        prime_r.predict_proba(Xte.drop(columns=["worst area"]))


def _lifelines_cox(z, y):
    from lifelines import CoxPHFitter
    event, time = survival_arrays(y)
    df = pd.DataFrame({"z": z, "T": time, "E": event.astype(int)})
    return CoxPHFitter().fit(df, "T", "E")


def test_cox_calibration_matches_lifelines_without_ties():
    rng = np.random.default_rng(0)
    s = rng.normal(size=200) * 3 + 1
    t = rng.exponential(np.exp(-0.8 * (s - 1) / 3))
    c = rng.exponential(2.0, size=200)
    y = Surv.from_arrays(t <= c, np.minimum(t, c))            # continuous times: Breslow = Efron
    cal = CoxCalibration().fit(s, y)
    z = (s - s.mean()) / s.std()
    ref = _lifelines_cox(z, y)
    assert cal.beta_ == pytest.approx(ref.params_["z"], rel=1e-5)
    assert cal.se_ == pytest.approx(ref.standard_errors_["z"], rel=1e-4)
    assert cal.loglik_ == pytest.approx(ref.log_likelihood_, rel=1e-7)
    H = ref.baseline_cumulative_hazard_.iloc[:, 0]     # at the covariate mean, i.e. z = 0
    np.testing.assert_allclose(cal.cumhaz_, H.loc[cal.times_].to_numpy(), rtol=1e-5)
    assert cal.bic_ == pytest.approx(-2 * cal.loglik_ + np.log(y["event"].sum()))


def test_cox_calibration_of_a_constant_score_is_the_null_model(gbsg_split):
    from prime_stats.features import cox_partial_loglik
    _, _, ytr, _ = gbsg_split
    event, time = survival_arrays(ytr)
    cal = CoxCalibration().fit(np.full(len(ytr), 3.0), ytr)
    assert cal.beta_ == 0.0
    assert cal.loglik_ == pytest.approx(cox_partial_loglik(np.zeros(len(ytr)), event, time))
    informative = CoxCalibration().fit(-np.log(time) + np.random.default_rng(0).normal(size=len(time)), ytr)
    assert informative.bic_ < cal.bic_          # BMA would put (almost) no weight on the constant
    np.testing.assert_allclose(cal.survival(np.full(3, 3.0), [0.0])[:, 0], 1.0)
    with pytest.raises(ArithmeticError, match="did not converge"):
        CoxCalibration().fit(-time, ytr)           # perfectly separating score


def test_cox_calibration_matches_r_coxph_breslow(gbsg_split, r_engine):
    Xtr, _, ytr, _ = gbsg_split
    event, time = survival_arrays(ytr)
    s = Xtr["pnodes"].to_numpy()          # a real, heavily tied score with tied times
    cal = CoxCalibration().fit(s, ytr)
    z = (s - s.mean()) / s.std()
    vec = lambda v: "c(%s)" % ",".join(repr(float(a)) for a in v)  # noqa: E731
    res = r_engine.run_r(
        f"local({{f <- survival::coxph(survival::Surv({vec(time)}, {vec(event)}) ~ z, "
        f"data = data.frame(z = {vec(z)}), ties = 'breslow');"
        "b <- survival::basehaz(f, centered = FALSE);"
        "c(coef(f), sqrt(vcov(f)), f$loglik[2], b$hazard[b$time == max(b$time)])})")
    res = np.asarray(res, dtype=float)
    assert cal.beta_ == pytest.approx(res[0], rel=1e-6)
    assert cal.se_ == pytest.approx(res[1], rel=1e-5)
    assert cal.loglik_ == pytest.approx(res[2], rel=1e-9)
    assert cal.cumhaz_[-1] == pytest.approx(res[3], rel=1e-6)


def test_bic_softmax_weights_are_exp_minus_half_bic(prime_s, gbsg_split):
    """The former "BMA" under its true name: exp(-BIC/2) of each member's one-slope Cox calibration."""
    Xtr, _, ytr, _ = gbsg_split
    bic = clone(prime_s).set_params(averaging="bic_softmax")._average(Xtr, ytr, prime_s.bases_)
    tab = bic.bma_table_
    assert len(tab) == 4 and tab.weight.sum() == pytest.approx(1.0)
    w = np.exp(-(tab.bic - tab.bic.min()) / 2)
    np.testing.assert_allclose(tab.weight, w / w.sum())
    for key, cal in prime_s.calibrations_.items():
        kind, learner = key.split("/")
        row = tab[(tab.feature_kind == kind) & (tab.learner == learner)].iloc[0]
        assert row.beta == cal.beta_ and row.bic == cal.bic_
        # the calibration is fitted on the member's out-of-fold risk, not on in-sample predictions
        oof = prime_s.bases_[kind].results_[learner].oof_
        assert cal.mean_ == pytest.approx(oof.mean())
    assert (tab.lower <= tab.weight + 1e-12).all() and (tab.weight <= tab.upper + 1e-12).all()


def test_survival_log_score_is_the_breslow_predictive_density(prime_s, gbsg_split):
    """Each member's pointwise log score: log[S(t-) - S(t)] for an event, log S(t) if censored, with
    S(t|s) = exp(-H0(t) exp(lp)) the calibration's own survival function (evaluated just before and
    at each time)."""
    from prime_stats.fusion import survival_log_score
    _, _, ytr, _ = gbsg_split
    event, time = survival_arrays(ytr)
    key = next(iter(prime_s.calibrations_))
    cal = prime_s.calibrations_[key]
    kind, learner = key.split("/")
    oof = prime_s.bases_[kind].results_[learner].oof_
    ll = survival_log_score(cal, oof, ytr)
    S_at = np.array([cal.survival(oof[[i]], [time[i]])[0, 0] for i in range(len(time))])
    S_before = np.array([cal.survival(oof[[i]], [time[i] - 1e-9])[0, 0] for i in range(len(time))])
    with np.errstate(divide="ignore"):     # np.where evaluates both branches
        ref = np.where(event, np.log(S_before - S_at), np.log(S_at))
    np.testing.assert_allclose(ll, ref, rtol=1e-6)
    assert prime_s.weights_table_.oof_log_score.iloc[0] == pytest.approx(ll.mean())


def test_stacking_weights_solve_the_yao_objective(prime_s, gbsg_split):
    """Stacking of predictive distributions (Yao et al. 2018): the EM solution equals scipy's SLSQP
    on the simplex (the same concave objective), on the real GBSG2 members' out-of-fold log scores;
    the default (bagged) weights are the mean of the same solution over Bayesian-bootstrap
    reweightings of the rows, each of which also solves its weighted objective."""
    from scipy.optimize import minimize

    from prime_stats.fusion import _dirichlet, pseudo_bma_plus_weights, stacking_weights, survival_log_score
    Xtr, _, ytr, _ = gbsg_split
    L = np.column_stack([survival_log_score(cal, prime_s.bases_[k.split("/")[0]].results_[k.split("/")[1]].oof_, ytr)
                         for k, cal in prime_s.calibrations_.items()])
    w = stacking_weights(L)
    plain = clone(prime_s).set_params(averaging="stacking")._average(Xtr, ytr, prime_s.bases_)
    np.testing.assert_allclose(w, plain.weights_, atol=1e-8)
    G = _dirichlet(np.random.default_rng([0, 4099]), len(L), prime_s.n_bootstrap)
    draws = stacking_weights(L, G)
    np.testing.assert_allclose(prime_s.weights_, draws.mean(axis=0), atol=1e-12)
    assert prime_s.averaging == "bagged_stacking" and prime_s.weights_.sum() == pytest.approx(1.0)
    g_obj = lambda v: -np.sum(G[0] * np.log(np.exp(L) @ v))                 # noqa: E731
    K = L.shape[1]
    g_ref = minimize(g_obj, np.full(K, 1 / K), method="SLSQP", bounds=[(0, 1)] * K,
                     constraints=[{"type": "eq", "fun": lambda v: v.sum() - 1}], options={"ftol": 1e-14})
    assert g_obj(draws[0]) <= g_ref.fun * (1 + 1e-9)
    K = L.shape[1]
    obj = lambda v: -np.sum(np.log(np.exp(L) @ v))                         # noqa: E731
    ref = minimize(obj, np.full(K, 1 / K), method="SLSQP", bounds=[(0, 1)] * K,
                   constraints=[{"type": "eq", "fun": lambda v: v.sum() - 1}], options={"ftol": 1e-14})
    assert obj(w) <= ref.fun * (1 + 1e-9)
    np.testing.assert_allclose(w, ref.x, atol=2e-3)
    pb, draws = pseudo_bma_plus_weights(L, n_draws=500)
    assert pb.sum() == pytest.approx(1.0) and draws.shape == (500, K)
    best = np.argmax(L.sum(axis=0))
    assert np.argmax(pb) == best                                       # pseudo-BMA+ favours the best elpd


def test_bma_risk_and_survival_function(prime_s, gbsg_split):
    _, Xte, _, yte = gbsg_split
    times = np.array([180.0, 365, 730, 1460, 2500, 5000])
    fns = prime_s.predict_survival_function(Xte)                       # scikit-survival step functions
    assert len(fns) == len(Xte) and fns[0].x[0] == 0 and fns[0].y[0] == 1
    np.testing.assert_allclose(np.vstack([f.y for f in fns]), prime_s.predict_survival_function(Xte, return_array=True))
    from prime_stats.evaluation._survcore import survival_at
    S = survival_at(fns, times)                                        # last value carried past the last event
    assert S.shape == (len(Xte), len(times))
    assert np.all((S >= 0) & (S <= 1)) and np.all(np.diff(S, axis=1) <= 1e-12)
    member = prime_s.member_risk(Xte)
    assert list(member.columns) == ["clinical/gbsa", "clinical/fast_svm", "radiomics/gbsa", "radiomics/fast_svm"]
    manual = sum(w * cal.survival(member[k], times)
                 for w, (k, cal) in zip(prime_s.weights_, prime_s.calibrations_.items()))
    np.testing.assert_allclose(S, manual)
    risk = prime_s.predict(Xte)
    lp = sum(w * cal.linear_predictor(member[k])
             for w, (k, cal) in zip(prime_s.weights_, prime_s.calibrations_.items()))
    np.testing.assert_allclose(risk, lp)
    assert prime_s.score(Xte, yte) > 0.62
    # a higher BMA risk means a lower BMA survival at every horizon, on average
    hi = risk > np.median(risk)
    assert np.all(S[hi].mean(axis=0)[:-1] < S[~hi].mean(axis=0)[:-1])


def test_members_with_negligible_weight_are_not_evaluated(prime_s, gbsg_split, monkeypatch):
    """A member whose stacking weight is below NEGLIGIBLE_WEIGHT (EM leaves 1e-71-sized weights
    instead of zeros) is not predicted, and the averaged risk still equals the full weighted sum."""
    from prime_stats.fusion import NEGLIGIBLE_WEIGHT

    _, Xte, _, _ = gbsg_split
    member = prime_s.member_risk(Xte)
    weights = np.array([0.7, 0.3 - 1e-71, 1e-71, 0.0])
    monkeypatch.setattr(prime_s, "weights_", weights)
    full = sum(w * cal.linear_predictor(member[k]) for w, (k, cal) in zip(weights, prime_s.calibrations_.items()))
    called = []
    original = prime_s._member_scores
    monkeypatch.setattr(prime_s, "_member_scores", lambda X, keys: called.extend(keys) or original(X, keys))
    np.testing.assert_allclose(prime_s.predict(Xte), full, rtol=1e-12, atol=1e-12)
    assert called == ["clinical/gbsa", "clinical/fast_svm"] and weights[2] < NEGLIGIBLE_WEIGHT


def _count_rows(monkeypatch, obj, method, log, label):
    """Record the number of rows ``obj.method`` is called with, under ``label``."""
    original = getattr(obj, method)

    def counted(Z, *args, **kwargs):
        log.append((label, len(Z)))
        return original(Z, *args, **kwargs)

    monkeypatch.setattr(obj, method, counted)


def test_each_distinct_row_is_scored_once(prime_r, prime_s, bc_split, gbsg_split, monkeypatch):
    """SHAP's coalition rows repeat each modality's values: PRIME-R's bases and PRIME-S's members score
    the distinct rows of their modality's columns once (PRIME-S's members of one modality through their
    one shared preprocessing), with the numbers of a row-by-row prediction."""
    from prime_stats.models.selection import distinct_rows

    _, Xs, _, _ = gbsg_split
    X = Xs.iloc[np.r_[0:10, 0:10, 3:6]].copy()
    X.iloc[10:20, X.columns.get_loc("progrec")] = X["progrec"].iloc[0]  # clinical values repeated only
    clin = ["age", "tsize", "pnodes"]
    rows, inverse = distinct_rows(X, clin)
    assert len(rows) == 10 and list(rows.columns) == clin
    np.testing.assert_array_equal(rows.to_numpy()[inverse], X[clin].to_numpy())
    assert len(distinct_rows(X.astype({"age": int}), clin)[0]) == len(X)   # not all float64: not reduced
    n_distinct = {"clinical": 10, "radiomics": len(np.unique(X[["progrec", "estrec"]].to_numpy(), axis=0))}
    log = []
    for key, pipe in prime_s.pipelines_.items():
        _count_rows(monkeypatch, pipe[-1], "predict", log, key)
    for kind in n_distinct:
        _count_rows(monkeypatch, prime_s.pipelines_[f"{kind}/gbsa"][0], "transform", log, kind)
    risk = prime_s.predict(X)
    used = [key for _, key in prime_s._used_members()]
    kinds = list(dict.fromkeys(key.split("/")[0] for key in used))
    assert sorted(log) == sorted([(k, n_distinct[k]) for k in kinds] + [(k, n_distinct[k.split("/")[0]]) for k in used])
    np.testing.assert_allclose(risk, [prime_s.predict(X.iloc[[i]])[0] for i in range(len(X))], rtol=1e-12)
    Xr = bc_split[1].iloc[np.r_[0:8, 0:8]]
    np.testing.assert_allclose(prime_r.predict_proba(Xr)[8:], prime_r.predict_proba(Xr.iloc[:8]), rtol=1e-12)


def test_cv_shap_refits_use_the_learners_the_frozen_predictions_use(prime_r, prime_s, monkeypatch):
    """PRIME-R: each modality's chosen learner; PRIME-S: the members with a non-negligible weight,
    whatever each modality's best learner by CV C-index was."""
    assert prime_r.predicting_learners_ == tuple(dict.fromkeys(prime_r.chosen_learners_.values()))
    monkeypatch.setattr(prime_s, "weights_", np.array([0.0, 1e-71, 0.4, 0.6]))
    assert list(prime_s.pipelines_) == ["clinical/gbsa", "clinical/fast_svm", "radiomics/gbsa", "radiomics/fast_svm"]
    assert prime_s.predicting_learners_ == ("gbsa", "fast_svm")
    monkeypatch.setattr(prime_s, "weights_", np.array([0.0, 1.0, 1e-71, 0.0]))
    assert prime_s.predicting_learners_ == ("fast_svm",)


def test_compare_modalities_table(bc_split):
    Xtr, _, ytr, _, clin, rad = bc_split
    X, y = Xtr.iloc[:150], ytr[:150]
    clin, rad = clin[:6], [c for c in rad if c.startswith("worst")][:6]
    tab, folds = compare_modalities(X, y, clin, rad, outer_cv=3, cv=3, learners=("stochastic_gb",),
                                    fast=True, return_folds=True)
    assert list(tab.model) == ["clinical", "radiomics", "early fusion", "late fusion"]
    assert set(tab.columns) >= {"endpoint", "model", "metric", "estimate", "lower", "upper", "method"}
    assert (tab.endpoint == "response").all() and (tab.metric == "AUC").all()
    assert (tab.method == "nested CV").all()
    means = folds.groupby("model", sort=False).value.mean()
    np.testing.assert_allclose(tab.set_index("model").estimate, means.loc[tab.model])
    assert (tab.lower <= tab.estimate).all() and (tab.estimate <= tab.upper).all()
    assert (tab.estimate > 0.85).all()
    # the late-fusion fold value reuses the fold's clinical and radiomics searches; it must equal a
    # PrimeR fitted from scratch on the same outer training rows
    tr, te = next(StratifiedKFold(3, shuffle=True, random_state=1).split(X, y))
    fresh = PrimeR(clin, rad, learners=("stochastic_gb",), cv=3, fast=True).fit(X.iloc[tr], y[tr])
    auc = roc_auc_score(y[te], fresh.predict_proba(X.iloc[te])[:, 1])
    late0 = folds.query("fold == 0 and model == 'late fusion'").value.item()
    assert late0 == pytest.approx(auc, abs=1e-12)


def test_compare_modalities_survival_late_fusion_is_prime_s(gbsg_split):
    from prime_stats.features import survival_folds
    from prime_stats.models.survival import cindex_scorer
    Xtr, _, ytr, _ = gbsg_split
    X, y = Xtr.iloc[:240].reset_index(drop=True), ytr[:240]
    clin, rad = list(X.columns[:3]), list(X.columns[3:])
    tab, folds = compare_modalities(X, y, clin, rad, outer_cv=3, cv=3, learners=("fast_svm",),
                                    fast=True, return_folds=True)
    assert (tab.metric == "C-index").all() and list(tab.model)[-1] == "late fusion"
    tr, te = survival_folds(y, 3, 1)[0]
    fresh = PrimeS(clin, rad, learners=("fast_svm",), cv=3, fast=True).fit(X.iloc[tr], y[tr])
    late0 = folds.query("fold == 0 and model == 'late fusion'").value.item()
    assert late0 == pytest.approx(cindex_scorer(fresh, X.iloc[te], y[te]), abs=1e-12)


# ------------------------------------------------------------------ ground truth: simulated study
@pytest.fixture(scope="module")
def simulated():
    from prime_stats import clinical as clin
    from prime_stats.simulate import simulate_cohort
    c, _ = simulate_cohort(n_a=300, n_b=0, seed=11)
    x = clin.add_clinical_indices(c)
    drop = {"patient_id", "centre", "response_3m", "os_days", "os_event", "subsequent_therapy",
            "monocytes_1m", "pt_1m", "albi_grade", "child_pugh_class"}
    from prime_stats.features import ClinicalEncoder
    enc = ClinicalEncoder().fit_transform(x[[f for f in x.columns if f not in drop]])   # encoded once, as the study does
    return pd.concat([enc, x[["response_3m", "os_days", "os_event"]]], axis=1), list(enc.columns)


def test_prime_r_finds_tumour_size_on_simulated_study(simulated):
    x, feats = simulated
    stable = PrimeR(feats, (), learners=("stochastic_gb",), cv=3, fast=True, oof_repeats=1,
                    n_bootstrap=20).fit(x, x.response_3m)
    prob = stable.selected_features_.set_index("feature").selection_probability
    assert prob.idxmax() == "tumour_diameter_mm" and prob.max() == 1.0, prob
    m = PrimeR(feats, (), learners=("stochastic_gb",), cv=3, fast=True, recipe="paper", oof_repeats=1,
               n_bootstrap=20).fit(x, x.response_3m)
    sel = m.selected_features_.set_index("feature")
    top = sel.selection_coefficient.abs().idxmax()
    assert top == "tumour_diameter_mm", sel
    # PNI or its ingredients (albumin, lymphocytes) carry the planted nutrition effect
    assert sel.index.intersection(["pni", "albumin", "lymphocytes", "albi_score"]).size >= 1


def test_prime_s_finds_the_planted_systemic_drivers(simulated):
    x, feats = simulated
    y = Surv.from_arrays(x.os_event.astype(bool), x.os_days)
    stable = PrimeS(feats, (), learners=("ridge_cox",), cv=3, fast=True, n_bootstrap=20).fit(x, y)
    prob = stable.selected_features_.set_index("feature").selection_probability
    assert {"d_monocytes", "albi_score"} <= set(prob.index[prob >= 0.9]), prob
    m = PrimeS(feats, (), learners=("fast_svm",), cv=3, fast=True, recipe="paper", n_bootstrap=20).fit(x, y)
    sel = m.selected_features_.set_index("feature").selection_coefficient.abs().sort_values(ascending=False)
    # the two strongest planted effects (0.55 each on the log-hazard scale) lead
    assert set(sel.index[:2]) == {"d_monocytes", "albi_score"}, sel
    drivers = {"d_monocytes", "hbv", "d_pt", "ast", "alt", "albi_score", "albumin", "bilirubin"}
    assert len(set(sel.index[:5]) & drivers) >= 4, sel
    assert not set(sel.index[:5]) & {"tumour_diameter_mm", "age", "afp"}


def test_fitted_models_round_trip_through_skops(prime_r, prime_s, bc_split, gbsg_split):
    """Fitted studies are saved with skops (no unrestricted pickle): every fitted table is stored as
    plain lists, and predictions are identical after loading."""
    import skops.io as sio
    _, Xte, *_ = bc_split
    _, Xs, _, _ = gbsg_split
    for model, check in ((prime_r, lambda m: m.predict_proba(Xte)),
                         (prime_s, lambda m: m.predict_survival_function(Xs, return_array=True))):
        blob = sio.dumps(model)
        untrusted = sio.get_untrusted_types(data=blob)
        assert not [t for t in untrusted if t.startswith(("pandas", "builtins.function"))]
        loaded = sio.loads(blob, trusted=untrusted)
        np.testing.assert_array_equal(check(loaded), check(model))
    loaded_r = sio.loads(sio.dumps(prime_r), trusted=sio.get_untrusted_types(data=sio.dumps(prime_r)))
    pd.testing.assert_frame_equal(loaded_r.fusion_weights_, prime_r.fusion_weights_)
    pd.testing.assert_frame_equal(loaded_r.selection_report_, prime_r.selection_report_)


def test_late_fusion_not_worse_on_simulated_external_centre():
    """Train on centre A (n=113), score centre B (n=133). Radiomics stand-in: noisy mixtures of the
    simulator's tumour traits (what extraction measures; extraction itself is tested in imaging).
    Late fusion must not lose more than one Hanley-McNeil SE against the better single modality."""
    from prime_stats import clinical as clin
    from prime_stats.simulate import simulate_cohort
    c, truth = simulate_cohort(n_a=113, n_b=133, seed=2024)
    x = clin.add_clinical_indices(c)
    drop = {"patient_id", "centre", "response_3m", "os_days", "os_event", "subsequent_therapy",
            "monocytes_1m", "pt_1m", "albi_grade", "child_pugh_class"}
    from prime_stats.features import ClinicalEncoder
    A = (x.centre == "A").to_numpy()
    enc = ClinicalEncoder().fit(x.loc[A, [f for f in x.columns if f not in drop]])   # fitted on training
    x = pd.concat([enc.transform(x[list(enc.feature_names_in_)]), x[["centre", "response_3m"]]], axis=1)
    feats = list(enc.get_feature_names_out())
    rng = np.random.default_rng(0)
    T = np.column_stack([np.log(truth.diameter), truth.irregularity, truth.heterogeneity])
    T = (T - T.mean(0)) / T.std(0)
    W = rng.normal(size=(3, 60)) * (rng.random((3, 60)) < 0.5)
    R = T @ W + rng.normal(size=(len(x), 60)) * rng.uniform(0.3, 2.0, 60)
    rad = pd.DataFrame(R, columns=[f"rad_{j}" for j in range(60)], index=x.index)
    X = pd.concat([x[feats], rad], axis=1)
    A, y = (x.centre == "A").to_numpy(), x.response_3m.to_numpy()
    m = PrimeR(feats, list(rad.columns), learners=("stochastic_gb",), cv=5, fast=True).fit(X[A], y[A])
    yb = y[~A]
    fused = roc_auc_score(yb, m.predict_proba(X[~A])[:, 1])
    single = m.base_proba(X[~A]).apply(lambda p: roc_auc_score(yb, p))
    a, n1, n0 = single.max(), yb.sum(), len(yb) - yb.sum()
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    se = np.sqrt((a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (n1 * n0))
    assert fused >= a - se, (fused, single.to_dict(), se)
    assert fused > 0.55


def test_out_of_fold_training_predictions(prime_r, prime_s, bc_split, gbsg_split):
    """PRIME-R's and PRIME-S's out-of-fold training predictions (used wherever a training patient must
    not be scored by a model fitted on them: the paradox and the omics groups)."""
    from sksurv.metrics import concordance_index_censored

    Xtr, _, ytr, _, _, _ = bc_split
    p = prime_r.oof_predict_proba()
    assert p.index.equals(Xtr.index)
    np.testing.assert_allclose(p, prime_r.meta_.predict_proba(prime_r.oof_proba_.to_numpy())[:, 1])
    assert roc_auc_score(ytr, p) < roc_auc_score(ytr, prime_r.predict_proba(Xtr)[:, 1])   # in-sample is optimistic
    Str, _, ystr, _ = gbsg_split
    r = prime_s.oof_predict()
    assert r.index.equals(Str.index)
    expected = sum(w * prime_s.calibrations_[k].linear_predictor(
        prime_s.bases_[k.split("/")[0]].results_[k.split("/")[1]].oof_)
        for w, k in zip(prime_s.weights_, prime_s.pipelines_) if w > 0)
    np.testing.assert_allclose(r, expected)
    c_oof = concordance_index_censored(ystr["cens"].astype(bool), ystr["time"], r.to_numpy())[0]
    c_in = concordance_index_censored(ystr["cens"].astype(bool), ystr["time"], prime_s.predict(Str))[0]
    assert 0.5 < c_oof < c_in
