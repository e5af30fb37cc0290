"""The simulated PRIME study: shape, realism and the planted ground truth."""
import json

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from lifelines import CoxPHFitter, KaplanMeierFitter
import statsmodels.api as sm

from prime_stats import clinical as clin
from prime_stats.cohort import Cohort
from prime_stats.simulate import read_gmt, simulate_cohort, simulate_study


@pytest.fixture(scope="module")
def big():
    return simulate_cohort(2000, 2000, seed=11)


def test_sizes_and_schema():
    df, truth = simulate_cohort(113, 133, seed=1)
    assert (df.centre == "A").sum() == 113 and (df.centre == "B").sum() == 133
    assert not any(c.startswith("_") for c in df.columns)
    Cohort(df)  # passes every schema check
    assert set(truth.columns) >= {"lp_response", "lp_survival", "heterogeneity", "irregularity"}


def test_realistic_ranges_and_missingness(big):
    df, _ = big
    assert df.age.between(25, 85).all() and df.albumin.between(20, 52).all()
    assert 0.75 < df.hbv.mean() < 0.9
    miss = df.isna().mean()
    assert miss["ldh"] > 0.30  # exercises the >30% exclusion rule
    for lab in ("afp", "alt", "platelets", "monocytes_1m", "pt_1m"):
        assert 0.03 < miss[lab] < 0.16, lab
    # liver-reserve labs are correlated the way they are in patients
    assert df[["albumin", "bilirubin"]].corr(method="spearman").iloc[0, 1] < -0.3


def test_outcome_rates_like_the_paper(big):
    df, _ = big
    for centre, g in df.groupby("centre"):
        assert 0.43 < g.response_3m.mean() < 0.53, centre
        km = KaplanMeierFitter().fit(g.os_days, g.os_event)
        assert 520 < km.median_survival_time_ < 720, centre
        rev = KaplanMeierFitter().fit(g.os_days, 1 - g.os_event)  # reverse KM follow-up
        assert 23 < rev.median_survival_time_ / 30.44 < 30, centre
    assert df.os_days.max() <= 1220 and (df.os_days > 0).all()


def test_response_driven_by_geometry_and_pni(big):
    df, truth = big
    d = clin.add_clinical_indices(df)
    X = pd.DataFrame({"log_diam": np.log(truth["diameter"]), "irregularity": truth["irregularity"],
                      "pni": d["pni"], "log_ast": np.log(d["ast"]), "hbv": d["hbv"]}).dropna()
    y = df.loc[X.index, "response_3m"]
    fit = sm.Logit(y, sm.add_constant((X - X.mean()) / X.std())).fit(disp=0)
    assert fit.params["log_diam"] > 0.4 and fit.pvalues["log_diam"] < 1e-6
    assert fit.params["irregularity"] < -0.4 and fit.params["pni"] > 0.3
    assert abs(fit.params["log_ast"]) < 0.15 and abs(fit.params["hbv"]) < 0.15  # not response drivers


def test_survival_driven_by_inflammation_and_liver_reserve(big):
    df, truth = big
    d = clin.add_clinical_indices(df)
    X = pd.DataFrame({"d_monocytes": d["d_monocytes"], "hbv": d["hbv"], "albi": d["albi_score"],
                      "log_ast": np.log(d["ast"]), "d_pt": d["d_pt"], "het": truth["heterogeneity"],
                      "log_diam": np.log(truth["diameter"]), "time": df.os_days,
                      "event": df.os_event}).dropna()
    cph = CoxPHFitter().fit(X, "time", "event")
    s = cph.summary
    for v in ("d_monocytes", "hbv", "albi", "log_ast", "d_pt", "het"):
        assert s.loc[v, "coef"] > 0 and s.loc[v, "p"] < 1e-3, v
    assert s.loc["log_diam", "p"] > 0.001  # geometry drives response, not survival


def test_reproducible():
    a, _ = simulate_cohort(30, 10, seed=3)
    b, _ = simulate_cohort(30, 10, seed=3)
    c, _ = simulate_cohort(30, 10, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


@pytest.fixture(scope="module")
def study(tmp_path_factory, shared_data):
    out = tmp_path_factory.mktemp("sim")
    simulate_study(out, n_a=16, n_b=8, seed=2, n_expression=16,
                   gene_sets=str(shared_data / "genesets" / "h.all.v7.5.1.symbols.gmt"))
    return out


def test_images_dual_phase(study):
    man = pd.read_csv(study / "manifest.csv")
    assert len(man) == 48 and set(man.phase) == {"AP", "PVP"}
    dice = []
    for _, r in man.iterrows():
        img = sitk.ReadImage(str(study / r.image))
        mask = sitk.ReadImage(str(study / r["mask"]))
        m2 = sitk.ReadImage(str(study / r.mask_observer2))
        sx, sy, sz = img.GetSpacing()
        assert 0.7 <= sx <= 0.9 and sx == sy and sz in (2.5, 3.0, 5.0)
        assert img.GetSize() == mask.GetSize() == m2.GetSize()
        a = sitk.GetArrayFromImage(img).astype(float)
        m = sitk.GetArrayFromImage(mask).astype(bool)
        b = sitk.GetArrayFromImage(m2).astype(bool)
        assert m.sum() > 100 and not m[0].any()  # tumour inside the field of view
        dice.append(2 * (m & b).sum() / (m.sum() + b.sum()))
        tumour, liver = np.median(a[m]), np.median(a[~m])
        if r.phase == "AP":
            assert tumour > liver + 10  # arterial hyper-enhancement
        else:
            assert tumour < liver - 5   # portal-venous washout
    assert 0.75 < np.median(dice) < 0.99  # second observer differs slightly


def test_every_mask_is_one_connected_component(study):
    """Both observers, both phases: one face-connected component (scipy.ndimage.label) and one
    fully connected component (SimpleITK ConnectedComponent), i.e. no stray islands."""
    from scipy import ndimage

    man = pd.read_csv(study / "manifest.csv")
    counts = []
    for _, r in man.iterrows():
        for kind in ("mask", "mask_observer2"):
            img = sitk.ReadImage(str(study / r[kind]))
            n_face = ndimage.label(sitk.GetArrayFromImage(img))[1]
            n_full = int(sitk.GetArrayFromImage(sitk.ConnectedComponent(img, True)).max())
            counts.append((r.patient_id, r.phase, kind, n_face, n_full))
    bad = [c for c in counts if c[3:] != (1, 1)]
    assert len(counts) == 96 and not bad, bad


def test_truth_and_expression(study, shared_data):
    truth = json.loads((study / "truth.json").read_text())
    assert truth["response_model"]["effects"]["pni"] > 0
    assert "d_monocytes" in truth["survival_model"]["effects"]
    expr = pd.read_csv(study / "expression_counts.tsv.gz", sep="\t", index_col=0)
    assert expr.shape[1] == 16 and (expr.values >= 0).all()
    tp = pd.read_csv(study / "truth_patients.csv").set_index("patient_id").loc[expr.columns]
    sets = read_gmt(shared_data / "genesets" / "h.all.v7.5.1.symbols.gmt")
    logcpm = np.log2(expr / expr.sum() * 1e6 + 1)
    z = logcpm.sub(logcpm.mean(1), axis=0).div(logcpm.std(1) + 1e-9, axis=0)
    ifn = z.loc[z.index.intersection(sets["HALLMARK_INTERFERON_GAMMA_RESPONSE"])].mean()
    emt = z.loc[z.index.intersection(sets["HALLMARK_EPITHELIAL_MESENCHYMAL_TRANSITION"])].mean()
    assert np.corrcoef(ifn, tp["lp_response"])[0, 1] > 0.6
    assert np.corrcoef(emt, tp["lp_survival"])[0, 1] > 0.6
    import yaml
    cfg = yaml.safe_load((study / "study.yaml").read_text())
    assert cfg["data"]["manifest"] == "manifest.csv"
