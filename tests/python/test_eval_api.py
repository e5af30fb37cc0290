"""One interface across prime_stats.evaluation (issue 13, Python idioms): every public statistic takes the
outcome first (``time, event, ...`` or ``y, ...``), horizons as ``times``, ``data=`` and ``engine="auto"``
as keywords; every result object has a short ``repr``, ``summary()`` and ``to_frame()``."""
import importlib
import inspect

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from prime_stats.evaluation.bootstrap import bootstrap_binary

MODULES = ["discrimination", "calibration", "decision", "overall", "survival", "score", "descriptive"]
TABLE_FIRST = {"table_one", "correlation_matrix"}          # Table 1 and correlations describe a data frame


def _public(kind):
    for m in MODULES:
        mod = importlib.import_module(f"prime_stats.evaluation.{m}")
        for name in mod.__all__:
            obj = getattr(mod, name)
            if kind(obj) and obj.__module__ == mod.__name__:
                yield f"{m}.{name}", obj


FUNCTIONS = dict(_public(inspect.isfunction))
RESULTS = {k: v for k, v in _public(inspect.isclass) if k.endswith(("Result", "Stratification", "TableOne"))}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_statistic_has_engine_data_and_the_outcome_first(name):
    params = inspect.signature(FUNCTIONS[name]).parameters
    assert params["engine"].default == "auto", f"{name}: engine='auto' is the default everywhere"
    assert not {"t", "horizon", "horizons", "time_points"} & set(params), f"{name}: horizons are called times"
    if name.split(".")[1] in TABLE_FIRST:
        assert list(params)[0] == "data"
        return
    assert params["data"].kind is inspect.Parameter.KEYWORD_ONLY, f"{name}: data= is a keyword"
    first = list(params)[:2]
    assert first == ["time", "event"] or first[0] == "y", f"{name} starts with {first}"


def test_the_result_objects_are_listed():
    assert set(RESULTS) == {"survival.KaplanMeierResult", "survival.RiskStratification", "descriptive.TableOne",
                            "descriptive.CorrelationResult"}


@pytest.mark.parametrize("name", sorted(RESULTS) + ["bootstrap.BootstrapResult"])
def test_every_result_object_prints_short_and_gives_tables(name):
    cls = RESULTS.get(name) or importlib.import_module("prime_stats.evaluation.bootstrap").BootstrapResult
    for method in ("__repr__", "summary", "to_frame"):
        assert method in vars(cls) and "<string>" not in inspect.getsourcefile(vars(cls)[method]), (name, method)


def test_bootstrap_result_repr_summary_to_frame():
    bc = load_breast_cancer(as_frame=True).frame
    p = (1 / (1 + np.exp(-(19.8 - 1.05 * bc["mean radius"] - 0.22 * bc["mean texture"])))).to_numpy()
    res = bootstrap_binary(bc.target.to_numpy(), {"a": p, "b": np.sqrt(p)}, B=40, seed=1)
    text = repr(res)
    assert len(text.splitlines()) == 2 and "B=40" in text and "['a', 'b']" in text
    tidy, summ = res.to_frame(), res.summary()
    assert len(tidy) == 2 * len(summ) and summ["method"].str.contains("BCa").all()
    assert {"model", "metric", "estimate", "se", "lower", "upper", "method", "engine"} <= set(summ.columns)
