"""Table 1 and correlation matrices, checked against R's stats tests on real data (pbc) and against
values printed in R's documentation (chisq.test and fisher.test examples)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prime_stats.evaluation import descriptive as ds


def _expand(table: np.ndarray, row_labels, col_labels, row_name="group", col_name="x") -> pd.DataFrame:
    rows = [(r, c) for i, r in enumerate(row_labels) for j, c in enumerate(col_labels)
            for _ in range(int(table[i, j]))]
    return pd.DataFrame(rows, columns=[row_name, col_name])


def _r_frame(r_engine, code):
    return r_engine.run_r(f"local({{ d <- {code}; d[] <- lapply(d, function(c) if (is.factor(c) || "
                          f"is.character(c)) as.character(c) else as.numeric(c)); d }})")


# ------------------------------------------------------------------------------------------
# published values (R documentation examples), Python only
# ------------------------------------------------------------------------------------------
def test_chisq_matches_r_documentation_example():
    # ?chisq.test: M <- as.table(rbind(c(762, 327, 468), c(484, 239, 477)))
    # X-squared = 30.070, df = 2, p-value = 2.954e-07
    M = np.array([[762, 327, 468], [484, 239, 477]])
    d = _expand(M, ["F", "M"], ["Democrat", "Independent", "Republican"], "gender", "party")
    t1 = ds.table_one(d, "gender", ["party"])
    row = t1.tests.iloc[0]
    assert row["test"] == "Pearson chi-square"
    assert row["statistic"] == pytest.approx(30.0701, abs=1e-4)
    assert row["p"] == pytest.approx(2.954e-07, rel=1e-3)


def test_fisher_matches_r_tea_tasting_example():
    # ?fisher.test TeaTasting: matrix(c(3, 1, 1, 3)), two-sided p-value = 0.4857
    T = np.array([[3, 1], [1, 3]])
    d = _expand(T, ["milk", "tea"], ["milk", "tea"], "truth", "guess")
    row = ds.table_one(d, "truth", ["guess"]).tests.iloc[0]
    assert row["test"] == "Fisher's exact"
    assert row["p"] == pytest.approx(0.4857, abs=1e-4)
    assert row["min_expected"] == 2.0


def test_smd_formulas_and_formatting():
    rng = np.random.default_rng(1)
    d = pd.DataFrame({"centre": ["A"] * 60 + ["B"] * 40,
                      "age": np.r_[rng.normal(60, 10, 60), rng.normal(65, 10, 40)],
                      "afp": np.r_[rng.lognormal(3, 1.5, 60), rng.lognormal(4, 1.5, 40)],
                      "hbv": np.r_[np.ones(45), np.zeros(15), np.ones(20), np.zeros(20)],
                      "bclc": ["B"] * 30 + ["C"] * 30 + ["B"] * 10 + ["C"] * 25 + ["A"] * 5})
    d.loc[3, "age"] = np.nan
    t1 = ds.table_one(d, "centre")
    tests = t1.tests.set_index("variable")
    a, b = d.loc[d.centre == "A", "age"].dropna(), d.loc[d.centre == "B", "age"]
    assert tests.at["age", "smd"] == pytest.approx(abs(a.mean() - b.mean()) / np.sqrt((a.var() + b.var()) / 2))
    pa, pb = 45 / 60, 20 / 40
    assert tests.at["hbv", "smd"] == pytest.approx(abs(pa - pb) / np.sqrt((pa * (1 - pa) + pb * (1 - pb)) / 2))
    assert tests.at["age", "missing"] == 1
    assert tests.at["hbv", "type"] == "categorical"
    # a level absent from one group still gives a finite multinomial SMD
    assert np.isfinite(tests.at["bclc", "smd"])
    assert tests.at["afp", "test"].startswith("Mann-Whitney")  # log-normal: Shapiro rejects
    f = t1.summary()
    assert list(f.columns) == ["Variable", "Level", "Overall (n=100)", "A (n=60)", "B (n=40)", "p", "test",
                               "SMD", "Missing"]
    assert f.loc[f["Variable"] == "hbv, n (%)", "A (n=60)"].tolist() == ["15 (25.0)", "45 (75.0)"]
    assert f.loc[f["Variable"].str.startswith("afp"), "Variable"].iloc[0] == "afp, median [IQR]"
    # skewness rule instead of Shapiro-Wilk; forcing non-normal
    t_sk = ds.table_one(d, "centre", ["age", "afp"], normality="skewness", nonnormal=["age"])
    assert t_sk.tests["test"].str.startswith("Mann-Whitney").all()


def test_errors():
    d = pd.DataFrame({"g": ["a"] * 5, "x": np.arange(5.0)})
    with pytest.raises(ValueError, match="one level only"):
        ds.table_one(d, "g")
    with pytest.raises(KeyError, match="centre"):
        ds.table_one(d, "centre")
    with pytest.raises(ValueError, match="'g' has 1 missing"):
        ds.table_one(pd.DataFrame({"g": ["a", None, "b"], "x": [1.0, 2, 3]}), "g")
    with pytest.raises(ValueError, match="'x' has no non-missing"):
        ds.table_one(pd.DataFrame({"g": ["a", "b"], "x": [np.nan, np.nan]}), "g")
    with pytest.raises(ValueError, match="not numeric"):
        ds.correlation_matrix(pd.DataFrame({"a": [1.0, 2, 3], "b": ["x", "y", "z"]}))


# ------------------------------------------------------------------------------------------
# against R stats on pbc
# ------------------------------------------------------------------------------------------
def test_table_one_two_groups_matches_r(r_engine):
    pbc = _r_frame(r_engine, "survival::pbc[!is.na(survival::pbc$trt), ]")
    t1 = ds.table_one(pbc, "trt", ["age", "bili", "albumin", "sex", "ascites", "stage", "chol"],
                      categorical=["stage"])
    tests = t1.tests.set_index("variable")
    ref = r_engine.run_r("""local({d <- survival::pbc[!is.na(survival::pbc$trt), ];
        c(age = wilcox.test(age ~ trt, d)$p.value, bili = wilcox.test(bili ~ trt, d)$p.value,
          albumin = wilcox.test(albumin ~ trt, d)$p.value, sex = chisq.test(table(d$trt, d$sex))$p.value,
          ascites = chisq.test(table(d$trt, d$ascites))$p.value,
          stage = chisq.test(table(d$trt, d$stage))$p.value, chol = wilcox.test(chol ~ trt, d)$p.value,
          sw_age2 = shapiro.test(d$age[d$trt == 2])$p.value, n_chol = sum(!is.na(d$chol)))})""")
    for i, v in enumerate(["age", "bili", "albumin", "sex", "ascites", "stage", "chol"]):
        assert tests.at[v, "p"] == pytest.approx(ref.iloc[i], rel=1e-8), v
    assert ref["sw_age2"] < 0.05 and not tests.at["age", "normal"]  # Shapiro-Wilk rejects -> Mann-Whitney
    assert tests.at["chol", "missing"] == len(pbc) - ref["n_chol"]
    # a normal variable goes to Welch's t-test (age within trt with the skewness rule)
    t2 = ds.table_one(pbc, "trt", ["age"], normality="skewness")
    p_t = r_engine.run_r("t.test(age ~ trt, survival::pbc[!is.na(survival::pbc$trt), ])$p.value")
    assert t2.tests["test"].iloc[0] == "Welch t-test"
    assert t2.tests["p"].iloc[0] == pytest.approx(p_t, rel=1e-8)


def test_table_one_more_groups_matches_r(r_engine):
    pbc = _r_frame(r_engine, "survival::pbc[!is.na(survival::pbc$trt), ]")
    pbc["stage"] = pbc["stage"].astype(int).astype(str)
    t1 = ds.table_one(pbc, "stage", ["age", "bili", "sex"], normality="skewness")
    tests = t1.tests.set_index("variable")
    ref = r_engine.run_r("""local({d <- survival::pbc[!is.na(survival::pbc$trt), ];
        c(oneway.test(age ~ stage, d)$p.value, kruskal.test(bili ~ stage, d)$p.value,
          fisher.test(table(d$stage, d$sex))$p.value)})""")
    assert tests.at["age", "test"] == "Welch ANOVA"
    assert tests.at["age", "p"] == pytest.approx(ref[0], rel=1e-8)
    assert tests.at["bili", "test"] == "Kruskal-Wallis"
    assert tests.at["bili", "p"] == pytest.approx(ref[1], rel=1e-8)
    assert tests.at["sex", "test"].startswith("Fisher's exact (Monte-Carlo")
    assert tests.at["sex", "p"] == pytest.approx(ref[2], abs=0.006)  # MC SE ~ 0.0016 with 1e5 tables


def test_small_sample_exact_mann_whitney_matches_r(r_engine):
    pbc = _r_frame(r_engine, "survival::pbc[1:40, c('trt', 'bili', 'albumin')]")
    t1 = ds.table_one(pbc, "trt", ["albumin"], nonnormal=["albumin"])
    p = r_engine.run_r("wilcox.test(albumin ~ trt, survival::pbc[1:40, ])$p.value")
    assert t1.tests["p"].iloc[0] == pytest.approx(p, rel=1e-8)


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_correlation_matrix_matches_r(r_engine, method):
    cols = ["age", "bili", "albumin", "chol", "platelet", "protime"]
    pbc = _r_frame(r_engine, "survival::pbc")
    cr = ds.correlation_matrix(pbc, cols, method=method)
    ref = r_engine.run_r(f"""local({{d <- survival::pbc; v <- c({', '.join(repr(c) for c in cols)});
        pr <- combn(v, 2); out <- t(apply(pr, 2, function(x) {{ ct <- cor.test(d[[x[1]]], d[[x[2]]],
            method = '{method}', exact = FALSE); c(ct$estimate, ct$p.value) }}));
        out <- cbind(out, p.adjust(out[, 2], 'BH')); as.data.frame(out)}})""")
    np.testing.assert_allclose(cr.long[["estimate", "p", "p_adj"]].to_numpy(float), ref.to_numpy(float),
                               rtol=1e-7, atol=1e-14)
    assert cr.r.loc["bili", "chol"] == cr.r.loc["chol", "bili"] == cr.long.query("var1 == 'bili' and var2 == 'chol'")[
        "estimate"].iloc[0]
    assert cr.long.loc[(cr.long.var1 == "age") & (cr.long.var2 == "chol"), "n"].iloc[0] == pbc["chol"].notna().sum()


def test_table_one_and_correlation_objects():
    d = pd.DataFrame({"g": ["a", "b"] * 30, "x": np.arange(60.0) % 7, "k": ["u", "v", "w"] * 20})
    t1 = ds.table_one(d, "g")
    assert repr(t1).startswith("Table 1 by group (a, b), 2 variables")
    tidy = t1.to_frame()
    assert {"variable", "group", "p", "test", "smd", "engine"} <= set(tidy.columns) and len(tidy) == len(t1.cells)
    c = ds.correlation_matrix(d.assign(y=np.arange(60.0) ** 0.5), ["x", "y"])
    assert c.to_frame().equals(c.long) and c.summary().shape == (2, 2)
    with pytest.raises(ValueError, match="no R implementation"):
        ds.table_one(d, "g", engine="R")
