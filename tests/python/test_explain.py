"""explain: CV-averaged SHAP, SurvSHAP(t) and the divergence table.

References: closed-form interventional Shapley values of a linear model, brute-force Shapley
enumeration of S(t|x), TreeSHAP vs exact model-agnostic Shapley on the same background, and the
simulator's planted drivers; the group-tested feature screen against the per-column screen.
"""
from itertools import combinations
from math import factorial

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.feature_selection import SelectKBest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.util import Surv

from prime_stats import explain
from prime_stats.clinical import add_clinical_indices
from prime_stats.evaluation._survcore import survival_at as step_survival_at
from prime_stats.simulate import simulate_cohort

RESPONSE_DRIVERS = {"tumour_diameter_mm", "pni"}
SURVIVAL_DRIVERS = {"d_monocytes", "hbv", "albi_score", "ast", "d_pt"}
FEATURES = ["tumour_diameter_mm", "pni", "albi_score", "ast", "hbv", "d_monocytes", "d_pt", "age",
            "afp", "platelets"]


@pytest.fixture(scope="module")
def sim():
    clin, _ = simulate_cohort(n_a=400, n_b=10, seed=5)
    d = add_clinical_indices(clin)
    d = d[d["centre"] == "A"].reset_index(drop=True)
    X = d[FEATURES].astype(float)
    return X, d["response_3m"].to_numpy(), Surv.from_arrays(d["os_event"].astype(bool), d["os_days"])


@pytest.fixture(scope="module")
def breast():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X.iloc[:160, :6], y.iloc[:160].to_numpy()


def test_linear_model_matches_closed_form(breast):
    """Interventional SHAP of f(x) = b + w.x is w_j (x_j - mean of the background x_j)."""
    X, y = breast
    yc = X["mean area"] * 0.01 + np.random.default_rng(0).normal(size=len(X))
    for exact_max in (8, 2):  # exact explainer, then the permutation explainer
        res = explain.cv_shap(LinearRegression(), X, yc.to_numpy(), cv=4, n_background=1000,
                              exact_max_features=exact_max, output="prediction")
        assert ("exact" if exact_max == 8 else "permutation") in res.explainer
        for k in range(4):
            rows = res.fold == k
            train = X[~rows]
            w = LinearRegression().fit(train, yc[~rows]).coef_
            expected = (X[rows] - train.mean()) * w
            np.testing.assert_allclose(res.values[rows].to_numpy(), expected.to_numpy(), atol=1e-8)
    assert res.ranking["rank"].tolist() == list(range(1, 7))
    assert set(res.fold_importance.index) == set(range(4))


def test_tree_explainer_equals_exact_shapley_inside_pipeline(breast):
    X, y = breast
    pipe = make_pipeline(StandardScaler(), GradientBoostingClassifier(n_estimators=30, max_depth=2,
                                                                      random_state=0))
    tree = explain.cv_shap(pipe, X, y, cv=3, explainer="tree", n_background=1000)
    agn = explain.cv_shap(pipe, X, y, cv=3, explainer="agnostic", n_background=1000, output="log-odds")
    assert "TreeExplainer" in tree.explainer and "exact" in agn.explainer
    assert tree.output == agn.output == "log-odds"
    # TreeSHAP explains the scaled features, the agnostic path the raw ones: same Shapley values
    np.testing.assert_allclose(tree.values.to_numpy(), agn.values.to_numpy(), atol=1e-6)
    prob = explain.cv_shap(pipe, X, y, cv=3, explainer="agnostic", n_background=1000)
    pred = prob.base_values + prob.values.sum(axis=1).to_numpy()
    assert prob.output == "probability" and pred.min() >= -1e-9 and pred.max() <= 1 + 1e-9


def test_forest_classifier_uses_exact_engine(breast):
    """shap's multi-output TreeSHAP (forest classifiers) is not exact: the exact engine is used."""
    import shap
    from sklearn.ensemble import RandomForestClassifier

    X, y = breast
    rf = RandomForestClassifier(30, max_depth=4, random_state=0)
    res = explain.cv_shap(rf, X, y, cv=3, n_background=1000)
    assert "exact" in res.explainer and res.output == "probability"
    fitted = rf.fit(X.iloc[:100], y[:100])
    f = lambda A: fitted.predict_proba(pd.DataFrame(A, columns=X.columns))[:, 1]
    ours, _, _ = explain.interventional_shapley(f, X.iloc[100:104].to_numpy(), X.iloc[:100].to_numpy())
    bg = X.iloc[:100].to_numpy()
    ref = [_brute_force_shapley(f, X.iloc[100 + i].to_numpy(), bg) for i in range(2)]
    np.testing.assert_allclose(ours[:2], np.asarray(ref), atol=1e-12)
    tree = shap.TreeExplainer(fitted, data=shap.maskers.Independent(bg, max_samples=100),
                              feature_perturbation="interventional", model_output="raw")
    tree_sv = np.asarray(tree.shap_values(X.iloc[100:104].to_numpy()))[..., 1]
    # why TreeSHAP is not used here; if a shap upgrade makes this fail, forests may use TreeSHAP again
    assert np.abs(tree_sv - ours).max() > 1e-4, "shap's multi-output TreeSHAP is now exact"


def test_selection_step_gives_zero_to_dropped_features(breast):
    X, y = breast
    pipe = make_pipeline(StandardScaler(), SelectKBest(k=2), GradientBoostingClassifier(n_estimators=20,
                                                                                         random_state=0))
    res = explain.cv_shap(pipe, X, y, cv=3, explainer="agnostic", exact_max_features=4)
    used = res.ranking.set_index("feature")
    assert (used["mean_abs_shap"] > 0).sum() <= 4 and (res.values != 0).sum(axis=1).max() <= 2
    tree = explain.cv_shap(pipe, X, y, cv=3)  # TreeExplainer on the selected (transformed) features
    assert tree.values.shape[1] <= X.shape[1] and (tree.ranking["n_folds_used"] <= 3).all()


def test_frozen_shap_explains_the_fitted_model_without_refitting(breast):
    """SHAP of the frozen model: closed form w_j (x_j - mean of the background) for a fitted linear
    model, efficiency against the fitted pipeline's own probabilities, dropped features left out."""
    X, y = breast
    yc = X["mean area"] * 0.01 + np.random.default_rng(0).normal(size=len(X))
    lin = LinearRegression().fit(X.iloc[:100], yc[:100])
    groups = np.repeat(["test", "external"], 30)
    r = explain.frozen_shap(lin, X.iloc[100:], background=X.iloc[:100], groups=groups, n_background=100)
    assert r.output == "risk" and "exact" in r.explainer and "background 100 training rows" in r.explainer
    expected = (X.iloc[100:] - X.iloc[:100].mean()) * lin.coef_
    np.testing.assert_allclose(r.values.to_numpy(), expected.to_numpy(), atol=1e-8)
    assert list(r.fold_importance.index) == ["external", "test"] and (r.fold == groups).all()
    pipe = make_pipeline(StandardScaler(), SelectKBest(k=2), LogisticRegression()).fit(X.iloc[:100], y[:100])
    r = explain.frozen_shap(pipe, X.iloc[100:], background=X.iloc[:100], n_background=20)
    kept = set(X.columns[pipe[1].get_support()])
    assert r.output == "probability" and set(r.ranking["feature"]) == kept == set(r.values.columns)
    np.testing.assert_allclose(r.base_values + r.values.sum(axis=1), pipe.predict_proba(X.iloc[100:])[:, 1],
                               atol=1e-10)
    with pytest.raises(ValueError, match="same columns"):
        explain.frozen_shap(lin, X.iloc[100:, :3], background=X.iloc[:100])
    # a constant model (e.g. PRIME-R whose stacker weights are all 0): no feature changes the output,
    # and the empty ranking still joins on its feature names
    from sklearn.dummy import DummyClassifier
    const = explain.frozen_shap(DummyClassifier().fit(X.iloc[:100], y[:100]), X.iloc[100:130],
                                background=X.iloc[:100], groups=np.repeat(["external"], 30))
    assert const.ranking.empty and const.values.shape == (30, 0)
    assert const.ranking.join(const.fold_importance.T, on="feature").empty


def test_input_errors(breast):
    X, y = breast
    with pytest.raises(TypeError, match="DataFrame"):
        explain.cv_shap(LinearRegression(), X.to_numpy(), y)
    with pytest.raises(ValueError, match="non-numeric"):
        explain.cv_shap(LinearRegression(), X.assign(site="A"), y)
    with pytest.raises(ValueError, match="rows but y"):
        explain.cv_shap(LinearRegression(), X, y[:-1])
    with pytest.raises(ValueError, match="duplicated row labels"):
        explain.cv_shap(LinearRegression(), X.set_axis([0] * len(X)), y)


def test_planted_drivers_on_simulated_study(sim):
    X, y, ys = sim
    clf = make_pipeline(SimpleImputer(strategy="median"),
                        GradientBoostingClassifier(n_estimators=80, max_depth=2, learning_rate=0.05,
                                                   subsample=0.8, random_state=0))
    r = explain.cv_shap(clf, X, y, cv=5)
    assert set(r.ranking["feature"].head(2)) == RESPONSE_DRIVERS
    cox = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), CoxPHSurvivalAnalysis())
    s = explain.cv_shap(cox, X, ys, cv=5, n_background=20)
    assert s.output == "risk" and "permutation" in s.explainer
    assert set(s.ranking["feature"].head(3)) <= SURVIVAL_DRIVERS
    assert s.ranking.set_index("feature").loc["tumour_diameter_mm", "rank"] > 5
    div = explain.divergence_table(r, s, top=3).set_index("feature")
    assert div.loc["tumour_diameter_mm", "driver"] == "response"
    assert (div.loc[list(set(s.ranking["feature"].head(3))), "driver"] == "survival").all()
    np.testing.assert_allclose(div["response_share"].sum(), 1.0)
    # features a model does not use are never its drivers, however short the ranking
    small = explain.divergence_table(pd.DataFrame({"feature": ["a", "b", "c"], "mean_abs_shap": [2.0, 1.0, 0.0]}),
                                     pd.DataFrame({"feature": ["c", "d"], "importance": [1.0, 0.0]}), top=10)
    assert small.set_index("feature")["driver"].to_dict() == {"a": "response", "b": "response",
                                                              "c": "survival", "d": "neither"}


def _brute_force_shapley(f, x, bg):
    """Interventional Shapley values by enumerating every coalition (reference)."""
    p = len(x)
    def v(S):
        Z = bg.copy()
        Z[:, list(S)] = x[list(S)]
        return f(Z).mean(axis=0)
    phi = np.zeros((p,) + np.shape(v(())))
    for j in range(p):
        others = [k for k in range(p) if k != j]
        for size in range(p):
            w = factorial(size) * factorial(p - size - 1) / factorial(p)
            for S in combinations(others, size):
                phi[j] += w * (v(S + (j,)) - v(S))
    return phi


def test_survshap_matches_brute_force_and_efficiency(sim):
    X, _, ys = sim
    cols = ["d_monocytes", "albi_score", "age"]
    Xs = X[cols].fillna(X[cols].median())
    model = CoxPHSurvivalAnalysis().fit(Xs.iloc[:300], ys[:300])
    times = np.array([180.0, 365.0, 730.0])
    res = explain.survshap(model, Xs.iloc[300:306], times, background=Xs.iloc[:300], n_background=15)
    assert res.values.shape == (6, 3, 3) and "exact" in res.explainer
    bg = Xs.iloc[:300].to_numpy()[np.random.default_rng(0).choice(300, 15, replace=False)]
    f = lambda A: explain.survival_at(model, pd.DataFrame(A, columns=cols), times)
    for i in range(2):
        ref = _brute_force_shapley(f, Xs.iloc[300 + i].to_numpy(), bg)  # p x T
        np.testing.assert_allclose(res.values[i], ref.T, atol=1e-10)
    np.testing.assert_allclose(res.base_values + res.values.sum(axis=2), res.prediction, atol=1e-10)
    np.testing.assert_allclose(res.prediction, f(Xs.iloc[300:306].to_numpy()))
    # a model with unique_times_ is read as an array: the values of its step functions
    np.testing.assert_array_equal(res.prediction, step_survival_at(model.predict_survival_function(Xs.iloc[300:306]),
                                                                   times))
    assert res.ranking["feature"].iloc[-1] == "age"  # no effect on survival in the simulator
    # survshap's "integral" aggregation per patient, averaged over patients
    per_patient = np.trapezoid(np.abs(res.values), times, axis=1).mean(axis=0)
    np.testing.assert_allclose(res.ranking.set_index("feature").loc[cols, "integral"], per_patient)
    np.testing.assert_allclose(res.ranking["importance"], res.ranking["integral"] / (730 - 180))
    assert set(res.importance.columns) == {"time", "feature", "mean_abs_shap"}
    with pytest.raises(ValueError, match="follow-up domain"):
        explain.survshap(model, Xs.iloc[:2], [1e6], background=Xs.iloc[:50])


class _IgnoresFirstColumn:
    """A survival model that does not use its first input column."""

    def __init__(self, model):
        self.model = model

    def predict_survival_function(self, X):
        return self.model.predict_survival_function(X.iloc[:, 1:])


def test_survshap_screens_unused_features(sim):
    X, _, ys = sim
    cols = ["afp", "d_monocytes", "albi_score", "ast"]
    Xs = X[cols].fillna(X[cols].median())
    model = _IgnoresFirstColumn(CoxPHSurvivalAnalysis().fit(Xs.iloc[:300, 1:], ys[:300]))
    times = [365.0, 730.0]
    res = explain.survshap(model, Xs.iloc[300:310], times, background=Xs.iloc[:300], n_background=20,
                           exact_max_features=3)
    assert "on 3 of 4 features" in res.explainer and "exact" in res.explainer
    assert np.all(res.values[:, :, 0] == 0)
    np.testing.assert_allclose(res.base_values + res.values.sum(axis=2), res.prediction, atol=1e-10)
    perm = explain.survshap(model, Xs.iloc[300:310], times, background=Xs.iloc[:300], n_background=20,
                            exact_max_features=2, n_permutations=30)
    assert "permutation" in perm.explainer and np.all(perm.values[:, :, 0] == 0)
    np.testing.assert_allclose(perm.base_values + perm.values.sum(axis=2), perm.prediction, atol=1e-10)
    np.testing.assert_allclose(perm.values, res.values, atol=0.01)  # Monte Carlo vs exact


def test_prime_models(sim):
    """PRIME-R (late fusion) and PRIME-S (BMA) are explained model-agnostically on their raw inputs."""
    from prime_stats.fusion import PrimeR, PrimeS

    X, y, ys = sim
    X, y, ys = X.iloc[:300], y[:300], ys[:300]
    feats = list(X.columns)
    r = explain.cv_shap(PrimeR(clinical_features=feats, learners=("stochastic_gb",), fast=True, cv=3),
                        X, y, cv=3, n_background=10)
    assert r.output == "probability" and r.values.shape == X.shape
    assert r.ranking["feature"].iloc[0] in RESPONSE_DRIVERS
    pred = r.base_values + r.values.sum(axis=1).to_numpy()
    assert pred.min() >= 0 and pred.max() <= 1
    model = PrimeS(clinical_features=feats, learners=("gbsa",), fast=True, cv=3).fit(X.iloc[:250], ys[:250])
    ss = explain.survshap(model, X.iloc[250:280], [180.0, 365.0, 730.0], background=X.iloc[:250],
                          n_background=10, n_permutations=3)
    np.testing.assert_allclose(ss.base_values + ss.values.sum(axis=2), ss.prediction, atol=1e-8)
    assert ss.ranking["feature"].iloc[0] in SURVIVAL_DRIVERS


def test_explain_figures(breast, tmp_path):
    from prime_stats.report import figures_explain as fe

    X, y = breast
    r = explain.cv_shap(GradientBoostingClassifier(n_estimators=20, random_state=0), X, y, cv=3)
    fig = fe.plot_shap_bar(r, max_features=4)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == list(r.ranking["feature"].head(4))[::-1]
    fe.plot_shap_beeswarm(r).savefig(tmp_path / "bee.png")
    d = explain.divergence_table(r, r.ranking.iloc[::-1].assign(mean_abs_shap=lambda t: t["mean_abs_shap"][::-1].values))
    fe.plot_divergence(d, top=5).savefig(tmp_path / "div.png")
    ys = Surv.from_arrays(y.astype(bool), np.linspace(10, 100, len(y)))
    cox = CoxPHSurvivalAnalysis(alpha=0.1).fit(X.iloc[:, :3], ys)
    s = explain.survshap(cox, X.iloc[:5, :3], [20.0, 50.0], background=X.iloc[:, :3], n_background=10)
    fig = fe.plot_survshap(s, patient=X.index[2])
    assert len(fig.axes[0].lines) == 3 + 1  # three features and the zero line
    with pytest.raises(KeyError, match="not explained"):
        fe.plot_survshap(s, patient="nobody")


# --------------------------------------------------------------------------------------------
# the active-feature screen: adaptive group testing vs the per-column reference
# --------------------------------------------------------------------------------------------
def _per_column_screen(f, X_test, bg, **_):
    """Reference: column j is active when replacing it alone, in any held-out row, by any
    background value changes the output (one model call per column)."""
    base = np.asarray(f(X_test))
    n, m = len(X_test), len(bg)
    active = np.zeros(X_test.shape[1], dtype=bool)
    for j in range(X_test.shape[1]):
        Z = np.repeat(X_test, m, axis=0)
        Z[:, j] = np.tile(bg[:, j], n)
        active[j] = not np.allclose(np.asarray(f(Z)), np.repeat(base, m, axis=0), rtol=0, atol=1e-12)
    return active


class _Counted:
    def __init__(self, f):
        self.f, self.calls, self.rows = f, 0, 0

    def __call__(self, Z):
        self.calls += 1
        self.rows += len(Z)
        return self.f(Z)


USED = [3, 77, 150, 151, 299]


@pytest.fixture(scope="module")
def wide():
    """300 columns, a fitted pipeline that uses 5 of them (selected by a ColumnTransformer)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingRegressor

    rng = np.random.default_rng(11)
    X = pd.DataFrame(rng.normal(size=(120, 300)), columns=[f"x{j}" for j in range(300)])
    X.iloc[:, 151] = rng.integers(0, 2, 120).astype(float)  # a binary column
    y = X.iloc[:, USED].to_numpy() @ np.array([1.0, -2.0, 0.5, 1.5, 1.0]) + 0.1 * rng.normal(size=120)
    pipe = make_pipeline(ColumnTransformer([("used", StandardScaler(), USED)]),
                         GradientBoostingRegressor(n_estimators=60, max_depth=2, random_state=0))
    return X, y, pipe.fit(X.iloc[:100], y[:100])


def test_group_screen_equals_per_column_screen_with_few_model_calls(wide):
    X, _, model = wide
    xt, bg = X.iloc[100:110].to_numpy(), X.iloc[:12].to_numpy()
    fns = {"pipeline": explain._prediction_function(model, list(X.columns), "prediction"),
           "function": lambda Z: np.column_stack([np.sin(Z[:, 3]) * Z[:, 77], Z[:, 150] + Z[:, 151] ** 2,
                                                  np.exp(Z[:, 299] / 4)])}  # n x 3 outputs
    for name, f in fns.items():
        ref = _per_column_screen(f, xt, bg)
        assert set(np.flatnonzero(ref)) == set(USED), name
        counted = _Counted(f)
        active = explain._active_features(counted, xt, bg)
        np.testing.assert_array_equal(active, ref)
        assert counted.calls <= 12, (name, counted.calls)  # vs 301 calls of the per-column screen
        assert counted.rows < 0.25 * 300 * len(xt) * len(bg)
        # tiny model calls (rows of a call chunked, also within the explained rows) and other blocks
        for kw in ({"max_cells": 300 * 10}, {"max_cells": 1000}, {"block_size": 1}, {"block_size": 7},
                   {"block_size": 300}):
            np.testing.assert_array_equal(explain._active_features(f, xt, bg, **kw), ref, err_msg=str(kw))


def _spy(monkeypatch):
    calls = []
    real = explain._active_features

    def spy(*args, **kwargs):
        calls.append(kwargs.get("block_size"))
        return real(*args, **kwargs)

    monkeypatch.setattr(explain, "_active_features", spy)
    return calls


class _UsesColumns:
    """A survival model that uses only the named columns of its input."""

    def __init__(self, model, columns):
        self.model, self.columns = model, columns

    def predict_survival_function(self, X):
        return self.model.predict_survival_function(X[self.columns])


def test_group_screen_leaves_shap_values_unchanged(wide, sim, monkeypatch):
    X, y, model = wide
    # cv_shap, model-agnostic engine, exact (5 active <= 6) and permutation (5 active > 4) paths
    for emf in (6, 4):
        calls = _spy(monkeypatch)
        new = explain.cv_shap(model, X, y, cv=3, explainer="agnostic", output="prediction",
                              n_background=10, exact_max_features=emf, n_permutations=4)
        assert calls == [None] * 3  # group screen per fold, no fallback
        monkeypatch.setattr(explain, "_active_features", _per_column_screen)
        old = explain.cv_shap(model, X, y, cv=3, explainer="agnostic", output="prediction",
                              n_background=10, exact_max_features=emf, n_permutations=4)
        pd.testing.assert_frame_equal(new.values, old.values, check_exact=True)
        np.testing.assert_array_equal(new.base_values, old.base_values)
        assert new.explainer == old.explainer and "5, 5, 5 of 300" in new.explainer
        assert set(new.ranking["feature"].head(5)) == {f"x{j}" for j in USED}
        monkeypatch.undo()
    # SurvSHAP(t) of a survival model that uses 3 of 40 columns
    Xs, _, ys = sim
    cols = ["d_monocytes", "albi_score", "ast"]
    rng = np.random.default_rng(3)
    noise = pd.DataFrame(rng.normal(size=(len(Xs), 37)), columns=[f"n{j}" for j in range(37)])
    Xw = pd.concat([noise.iloc[:, :20], Xs[cols].fillna(Xs[cols].median()), noise.iloc[:, 20:]], axis=1)
    model = _UsesColumns(CoxPHSurvivalAnalysis().fit(Xw[cols].iloc[:300], ys[:300]), cols)
    times = [365.0, 730.0]
    kw = dict(background=Xw.iloc[:300], n_background=12, exact_max_features=8)
    calls = _spy(monkeypatch)
    new = explain.survshap(model, Xw.iloc[300:308], times, **kw)
    assert calls == [None] and "exact" in new.explainer and "on 3 of 40 features" in new.explainer
    monkeypatch.setattr(explain, "_active_features", _per_column_screen)
    old = explain.survshap(model, Xw.iloc[300:308], times, **kw)
    np.testing.assert_array_equal(new.values, old.values)
    np.testing.assert_array_equal(new.base_values, old.base_values)
    assert set(np.flatnonzero(np.abs(new.values).sum(axis=(0, 1)))) == {20, 21, 22}
    np.testing.assert_allclose(new.base_values + new.values.sum(axis=2), new.prediction, atol=1e-10)


def test_screen_narrowed_to_the_selected_columns_leaves_shap_values_unchanged(wide, monkeypatch):
    """A model's selected columns (PRIME's ``selected_features_``) narrow the screen when the game on
    them reproduces f; a list that misses a used column is detected and the whole width is screened."""
    X, _, model = wide
    xt, bg = X.iloc[100:106].to_numpy(), X.iloc[:10].to_numpy()
    f = explain._prediction_function(model, list(X.columns), "prediction")
    full = explain._screened_shapley(f, xt, bg, 4, 4, 0)
    for cand, width in ((USED + [0, 10, 200], 8), (USED[1:] + [0], 300)):
        mask = np.isin(np.arange(300), cand)
        widths = []
        real = explain._active_features
        monkeypatch.setattr(explain, "_active_features",
                            lambda f_, x, *a, **k: widths.append(x.shape[1]) or real(f_, x, *a, **k))
        narrowed = explain._screened_shapley(f, xt, bg, 4, 4, 0, mask)
        monkeypatch.undo()
        assert widths == [width]
        np.testing.assert_array_equal(narrowed[0], full[0])
        np.testing.assert_array_equal(narrowed[1], full[1])
        assert narrowed[3] == full[3] == 5
    table = pd.DataFrame({"feature": ["x3", "x77", "nope"]})
    model_with = type("M", (), {"selected_features_": table})()
    np.testing.assert_array_equal(np.flatnonzero(explain._selected_columns(model_with, list(X.columns))), [3, 77])
    assert explain._selected_columns(model, list(X.columns)) is None


def test_group_screen_falls_back_when_effects_cancel_within_a_block(monkeypatch):
    """f = (x0 - x1) + x0 * x4 with x0 == x1 in every row and x4 == 0 in the explained rows:
    replacing the block {x0..x3} changes no output, each of x0, x1 alone does. The reduced game
    (x0, x1 held at the first background row) then misses f on the background rows, so the exact
    per-column screen is used, and the values are the exact Shapley values on all 12 columns."""
    rng = np.random.default_rng(0)

    def f(Z):
        return (Z[:, 0] - Z[:, 1]) + Z[:, 0] * Z[:, 4]

    xt, bg = rng.normal(size=(4, 12)), rng.normal(size=(6, 12))
    xt[:, 1], xt[:, 4], bg[:, 1] = xt[:, 0], 0.0, bg[:, 0]
    group = explain._active_features(f, xt, bg)  # default blocks: {0..3}, {4..7}, {8..11}
    assert set(np.flatnonzero(group)) == {4}
    assert set(np.flatnonzero(_per_column_screen(f, xt, bg))) == {0, 1, 4}
    calls = _spy(monkeypatch)
    values, base, name, n_active = explain._screened_shapley(f, xt, bg, 8, 10, 0)
    assert calls == [None, 1] and n_active == 3 and "exact" in name
    ref, ref_base, _ = explain.interventional_shapley(f, xt, bg, exact_max_features=12)
    np.testing.assert_allclose(values, ref, atol=1e-12)
    np.testing.assert_allclose(base, ref_base, atol=1e-12)
    np.testing.assert_allclose(base + values.sum(axis=1), f(xt), atol=1e-12)
    assert np.abs(values[:, [0, 1]]).min() > 1e-3  # the columns the group test alone would miss
