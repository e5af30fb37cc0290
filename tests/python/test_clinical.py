"""Clinical indices against worked examples from their original definitions."""
import numpy as np
import pandas as pd
import pytest

from prime_stats import clinical as clin


def test_albi_worked_examples():
    # Johnson 2015: ALBI = 0.66*log10(bilirubin umol/L) - 0.085*albumin g/L
    # bilirubin 17 umol/L (1.0 mg/dL), albumin 40 g/L -> 0.66*1.230449 - 3.4 = -2.5879 -> grade 2
    s = clin.albi_score([40.0], [17.0])
    assert s[0] == pytest.approx(0.66 * np.log10(17) - 3.4, abs=1e-12)
    assert s[0] == pytest.approx(-2.5879, abs=1e-4)
    assert clin.albi_grade(s)[0] == 2
    # well-compensated: bilirubin 8, albumin 45 -> -3.2290 -> grade 1; decompensated: 60, 25 -> -0.9514 -> grade 3
    s = clin.albi_score([45.0, 25.0], [8.0, 60.0])
    np.testing.assert_allclose(s, [-3.2290, -0.9514], atol=1e-4)
    np.testing.assert_array_equal(clin.albi_grade(s), [1, 3])


def test_albi_grade_cut_points_are_inclusive_upper():
    np.testing.assert_array_equal(clin.albi_grade([-2.60, -2.5999, -1.39, -1.3899, np.nan])[:4], [1, 2, 2, 3])
    assert np.isnan(clin.albi_grade([np.nan])[0])


def test_pni_definition():
    # Onodera: 10 x albumin (g/dL) + 0.005 x lymphocytes (/mm^3); 4.0 g/dL and 1500/mm^3 -> 47.5
    assert clin.pni([40.0], [1.5])[0] == pytest.approx(10 * 4.0 + 0.005 * 1500)


def test_child_pugh_examples():
    # bilirubin 20 (1), albumin 38 (1), INR 1.2 (1), no ascites (1), no HE (1) -> 5, class A
    # bilirubin 40 (2), albumin 30 (2), INR 1.8 (2), mild ascites (2), no HE (1) -> 9, class B
    # bilirubin 60 (3), albumin 25 (3), INR 2.5 (3), severe ascites (3), HE grade 3-4 (3) -> 15, class C
    s = clin.child_pugh_score([20, 40, 60], [38, 30, 25], [1.2, 1.8, 2.5], [0, 1, 2], [0, 0, 2])
    np.testing.assert_array_equal(s, [5, 9, 15])
    assert list(clin.child_pugh_class(s)) == ["A", "B", "C"]
    # boundaries: bilirubin 34 -> 2 points, albumin 35 -> 2, albumin 28 -> 2, INR 1.7 -> 2, 2.3 -> 2
    assert clin.child_pugh_score([34], [35], [1.7], [0], [0])[0] == 2 + 2 + 2 + 1 + 1
    assert clin.child_pugh_score([50], [28], [2.3], [0], [0])[0] == 2 + 2 + 2 + 1 + 1
    assert clin.child_pugh_class([6, 7, 9, 10]).tolist() == ["A", "B", "B", "C"]


def test_child_pugh_rejects_bad_grade():
    with pytest.raises(ValueError, match="ascites"):
        clin.child_pugh_score([20], [38], [1.2], [3], [0])


def test_ratios_and_relative_change():
    np.testing.assert_allclose(clin.ratio([4.0, 3.0], [2.0, 0.0], "nlr"), [2.0, np.nan])
    np.testing.assert_allclose(clin.relative_change([0.5, 12.0], [0.6, 13.2], "monocytes"), [0.2, 0.1])
    with pytest.warns(UserWarning, match="P2"):
        out = clin.relative_change([1.0, 0.0], [2.0, 1.0], "monocytes", patient_ids=["P1", "P2"])
    assert np.isnan(out[1])


def test_add_clinical_indices_and_errors():
    df = pd.DataFrame({"albumin": [40.0, 30.0], "bilirubin": [17.0, 40.0], "lymphocytes": [1.5, 1.0],
                       "neutrophils": [3.0, 4.0], "monocytes": [0.5, 0.4], "monocytes_1m": [0.6, 0.2],
                       "pt": [12.0, 13.0], "pt_1m": [12.6, 13.0], "inr": [1.0, 1.8], "ascites": [0, 1],
                       "encephalopathy": [0, 0]}, index=["P1", "P2"])
    out = clin.add_clinical_indices(df)
    np.testing.assert_allclose(out["pni"], [47.5, 35.0])
    np.testing.assert_allclose(out["nlr"], [2.0, 4.0])
    np.testing.assert_allclose(out["mlr"], [1 / 3, 0.4])
    np.testing.assert_allclose(out["d_monocytes"], [0.2, -0.5])
    np.testing.assert_allclose(out["d_pt"], [0.05, 0.0])
    assert out["child_pugh_class"].tolist() == ["A", "B"]
    with pytest.raises(KeyError, match="ldh_1m"):
        clin.add_clinical_indices(df.assign(ldh=1.0), change_labs=["ldh"])
    with pytest.raises(ValueError, match="albumin: non-numeric"):
        clin.pni(["forty"], [1.0])


def test_clinical_encoder_learns_levels_from_training_only():
    train = pd.DataFrame({"age": [50, 60, 70], "bclc": ["B", "C", "C"]})
    test = pd.DataFrame({"age": [55], "bclc": ["A"]})  # level unseen in training
    from prime_stats.features import ClinicalEncoder

    enc = ClinicalEncoder().fit(train)
    assert list(enc.get_feature_names_out()) == ["age", "bclc=C"]
    np.testing.assert_array_equal(enc.transform(test).to_numpy(), [[55.0, 0.0]])
    with pytest.raises(KeyError, match="bclc"):
        enc.transform(test.drop(columns="bclc"))
