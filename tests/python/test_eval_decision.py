"""Net benefit against the Python dcurves package on its own example data, and against the R-native version."""
import os

import numpy as np
import pandas as pd
import pytest

dcurves = pytest.importorskip("dcurves")

from prime_stats.evaluation.decision import net_benefit, net_benefit_survival  # noqa: E402

TH = np.round(np.arange(0.0, 1.0, 0.01), 2)


@pytest.fixture(scope="module")
def df_binary():
    return pd.read_csv(os.path.join(dcurves.data, "df_binary.csv"))


@pytest.fixture(scope="module")
def df_surv():
    return pd.read_csv(os.path.join(dcurves.data, "df_surv.csv"))


def _merge(ref, mine):
    m = ref.merge(mine, on=["model", "threshold"], suffixes=("_ref", ""))
    assert len(m) == len(mine)
    return m


def test_binary_matches_dcurves(df_binary):
    ref = dcurves.dca(data=df_binary, outcome="cancer", modelnames=["cancerpredmarker", "famhistory"],
                      thresholds=TH)
    mine = net_benefit(df_binary.cancer.astype(int),
                       {"cancerpredmarker": df_binary.cancerpredmarker,
                        "famhistory": df_binary.famhistory.astype(float)}, TH)
    m = _merge(ref, mine)
    np.testing.assert_allclose(m.net_benefit, m.net_benefit_ref.astype(float), atol=1e-12)
    pos = m.threshold > 0
    np.testing.assert_allclose(m.interventions_avoided[pos], m.net_intervention_avoided[pos].astype(float),
                               atol=1e-10)
    # hand check: treat-all at 10% = prevalence - (1 - prevalence) / 9
    prev = df_binary.cancer.mean()
    nb_all = mine[(mine.model == "all") & (mine.threshold == 0.1)].net_benefit.iloc[0]
    assert nb_all == pytest.approx(prev - (1 - prev) * 0.1 / 0.9, abs=1e-14)


def test_survival_matches_dcurves(df_surv):
    ref = dcurves.dca(data=df_surv, outcome="cancer", modelnames=["cancerpredmarker"], thresholds=TH,
                      time=1.5, time_to_outcome_col="ttcancer")
    mine = net_benefit_survival(df_surv.ttcancer, df_surv.cancer.astype(int),
                                {"cancerpredmarker": df_surv.cancerpredmarker}, 1.5, TH)
    m = _merge(ref, mine)
    np.testing.assert_array_equal(m.net_benefit.isna(), m.net_benefit_ref.isna())
    np.testing.assert_allclose(m.net_benefit, m.net_benefit_ref.astype(float), atol=1e-12)
    pos = m.threshold > 0
    np.testing.assert_allclose(m.interventions_avoided[pos], m.net_intervention_avoided[pos].astype(float),
                               atol=1e-10)


def test_against_r_native(r_engine, df_binary, df_surv):
    th = np.arange(0.0, 0.9, 0.05)
    ref = r_engine.call_r("ps_r_net_benefit", y=df_binary.cancer.astype(int).to_numpy(),
                          prob=df_binary.cancerpredmarker.to_numpy(), thresholds=th)
    mine = net_benefit(df_binary.cancer.astype(int), df_binary.cancerpredmarker, th)
    m = ref.merge(mine, on=["model", "threshold"], suffixes=("_r", ""))
    np.testing.assert_allclose(m.net_benefit, m.net_benefit_r, atol=1e-12)
    ref = r_engine.call_r("ps_r_net_benefit", y=df_surv.cancer.astype(int).to_numpy(),
                          prob=df_surv.cancerpredmarker.to_numpy(), thresholds=th,
                          time=df_surv.ttcancer.to_numpy(), horizon=1.5)
    mine = net_benefit_survival(df_surv.ttcancer, df_surv.cancer.astype(int), df_surv.cancerpredmarker, 1.5, th)
    m = ref.merge(mine, on=["model", "threshold"], suffixes=("_r", "")).dropna(subset=["net_benefit"])
    np.testing.assert_allclose(m.net_benefit, m.net_benefit_r, atol=1e-12)


def test_harm_and_errors(df_binary):
    y = df_binary.cancer.astype(int)
    a = net_benefit(y, {"m": df_binary.cancerpredmarker}, [0.2])
    b = net_benefit(y, {"m": df_binary.cancerpredmarker}, [0.2], harm={"m": 0.01})
    assert (a.net_benefit - b.net_benefit)[a.model == "m"].iloc[0] == pytest.approx(0.01)
    with pytest.raises(ValueError, match="thresholds"):
        net_benefit(y, df_binary.cancerpredmarker, [1.0])
    with pytest.raises(ValueError, match="reserved"):
        net_benefit(y, {"all": df_binary.cancerpredmarker})
    with pytest.raises(ValueError, match=r"prob\['m'\] has 1 missing"):
        net_benefit(y, {"m": np.r_[np.nan, df_binary.cancerpredmarker[1:]]})
    with pytest.raises(ValueError, match="beyond the last follow-up"):
        net_benefit_survival([1.0, 2, 3], [1, 0, 1], [0.1, 0.5, 0.9], 10.0)
