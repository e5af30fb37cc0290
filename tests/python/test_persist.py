"""Persistence without unrestricted pickle: skops with trusted types, and the plain-data format
of cached results."""
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from prime_stats import persist
from prime_stats.explain import ShapResult


def test_plain_data_round_trip_is_exact(tmp_path):
    idx = pd.Index(["p1", "p2", "p3"], name="patient_id")
    values = pd.DataFrame({"age": [0.1, -0.2, 1e-17], "afp": [np.nan, 2.0, 3.0]}, index=idx)
    shap = ShapResult(values=values, data=values * 2, base_values=np.array([0.5, 0.5, 0.5]),
                      fold=np.array([0, 1, 2]), fold_importance=pd.DataFrame({"age": [0.1, 0.2]}),
                      ranking=pd.DataFrame({"feature": ["age", "afp"], "rank": [1, 2]}),
                      explainer="exact", output="probability")
    obj = {"response": shap, "survshap": None, "list": [1, 2.5, "x", True], "index": idx,
           "cube": np.arange(24.0).reshape(2, 3, 4), "n": np.int64(7)}
    persist.dump_data(obj, tmp_path / "entry")
    back = persist.load_data(tmp_path / "entry")
    assert isinstance(back["response"], ShapResult)
    pd.testing.assert_frame_equal(back["response"].values, values)
    np.testing.assert_array_equal(back["response"].fold, shap.fold)
    assert back["response"].explainer == "exact" and back["survshap"] is None
    assert back["list"] == [1, 2.5, "x", True] and back["n"] == 7
    pd.testing.assert_index_equal(back["index"], idx)
    np.testing.assert_array_equal(back["cube"], obj["cube"])


@dataclass
class _Foreign:
    x: int


def test_plain_data_refuses_foreign_classes_and_objects(tmp_path):
    persist.dump_data({"a": _Foreign(1)}, tmp_path / "e")
    with pytest.raises(persist.UntrustedFileError, match="not a prime_stats class"):
        persist.load_data(tmp_path / "e")
    with pytest.raises(TypeError, match="cannot store a object"):
        persist.dump_data({"a": object()}, tmp_path / "f")
    with pytest.raises(ValueError, match="Object arrays cannot be saved"):
        persist.dump_data(np.array([object()]), tmp_path / "g")


def test_skops_loads_trusted_types_only(tmp_path):
    X, y = np.random.default_rng(0).normal(size=(30, 2)), np.arange(30) % 2
    m = LogisticRegression().fit(X, y)
    persist.dump_skops(m, tmp_path / "m.skops")
    np.testing.assert_allclose(persist.load_skops(tmp_path / "m.skops").coef_, m.coef_)
    persist.dump_skops({"f": _Foreign(2)}, tmp_path / "f.skops")
    with pytest.raises(persist.UntrustedFileError, match="refusing to load types"):
        persist.load_skops(tmp_path / "f.skops")


class _WithReport:
    report_ = persist.TableAttr()


def test_table_attribute_round_trips_through_skops_as_arrays(tmp_path):
    """Numeric, boolean and all-text columns are stored as numpy arrays (a few skops entries, not one
    per cell); a text column with missing values stays a list; the frame reads back unchanged."""
    table = pd.DataFrame({"feature": ["a", "b", "c"], "value": [0.5, np.nan, 2.0], "kept": [True, False, True],
                          "reason": ["", None, "kept"]}, index=pd.Index([3, 1, 2], name="row"))
    obj = _WithReport()
    obj.report_ = table
    store = obj.__dict__["_report_store"]
    assert [type(c).__name__ for c in store["data"]] == ["ndarray", "ndarray", "ndarray", "list"]
    persist.dump_skops(store, tmp_path / "t.skops")
    back = _WithReport()
    back.__dict__["_report_store"] = persist.load_skops(tmp_path / "t.skops")
    pd.testing.assert_frame_equal(back.report_, table)
    table.loc[3, "value"] = 9.0
    assert obj.report_.loc[3, "value"] == 0.5


def test_models_written_by_parallel_workers_load_back(tmp_path):
    """write_models with 2 workers: an array above joblib's memmapping threshold (1 MB) reaches the
    worker as a memmap, and must still be stored as a plain array that read_models can load."""
    from prime_stats.study.fit import read_models, write_models

    X, y = np.random.default_rng(0).normal(size=(30, 2)), np.arange(30) % 2
    models = {"response": {"a": LogisticRegression().fit(X, y), "b": LogisticRegression().fit(X, 1 - y)}}
    names = np.array([f"feature_{i:06d}" for i in range(50_000)])   # 2.8 MB of text
    for m in models["response"].values():
        m.feature_report_ = names
    write_models(models, tmp_path, n_jobs=2)
    back = read_models(tmp_path, n_jobs=2)
    assert type(back["response"]["a"].feature_report_) is np.ndarray
    np.testing.assert_array_equal(back["response"]["b"].feature_report_, names)
    np.testing.assert_allclose(back["response"]["b"].coef_, models["response"]["b"].coef_)
