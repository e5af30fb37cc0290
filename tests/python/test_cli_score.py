"""prime-stats score: a predictions CSV -> the tidy validation table, identical to score_* in Python."""
import numpy as np
import pandas as pd
import pytest
from lifelines.datasets import load_rossi
from sklearn.datasets import load_breast_cancer

from prime_stats import cli
from prime_stats.evaluation import _survcore
from prime_stats.evaluation.score import score_binary, score_survival


@pytest.fixture(scope="module")
def rossi_csv(tmp_path_factory):
    """Rossi: a Cox model fitted on the even rows, predicted S(t|x) for the odd rows (a real split)."""
    d = load_rossi()
    X = d[["fin", "age", "race", "wexp", "mar", "paro", "prio"]].to_numpy(float)
    tr = np.arange(len(d)) % 2 == 0
    fit = _survcore.fit_cox(X[tr], d.week[tr], d.arrest[tr])
    ut, H = _survcore.baseline_cumhaz(d.week[tr], d.arrest[tr], X[tr] @ fit.coef)
    S = _survcore.cox_survival(ut, H, X[~tr] @ fit.coef, [20, 30, 45])
    out = d.loc[~tr, ["week", "arrest"]].assign(lp=X[~tr] @ fit.coef, s20=S[:, 0], s30=S[:, 1], s45=S[:, 2])
    path = tmp_path_factory.mktemp("score") / "rossi_pred.csv"
    out.to_csv(path, index=False)
    return path, out


def test_score_survival_cli_equals_python(rossi_csv, capsys, tmp_path):
    path, d = rossi_csv
    out = tmp_path / "m.csv"
    rc = cli.main(["score", str(path), "--time", "week", "--event", "arrest", "--times", "20,30,45",
                   "--model", "cox=s20,s30,s45", "--survival-probabilities", "--risk-score", "cox=lp",
                   "--engine", "python", "--thresholds", "0.2,0.3", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr()
    assert printed.err == ""                                   # no library warnings reach the shell
    header = printed.out.splitlines()[0].split()
    assert {"model", "metric", "time", "threshold", "estimate", "lower", "upper", "method", "engine"} <= set(header)
    assert "Harrell" in printed.out and "Uno (n/G2)" in printed.out
    tab = pd.read_csv(out)
    ref = score_survival(d.week.to_numpy(float), d.arrest.to_numpy(), {"cox": 1 - d[["s20", "s30", "s45"]].to_numpy()},
                         [20.0, 30.0, 45.0], risk_scores={"cox": d.lp.to_numpy()}, engine="python")
    m = tab[tab.metric != "net benefit"].reset_index(drop=True)
    np.testing.assert_allclose(m.estimate, ref.estimate, rtol=1e-12)
    assert m.metric.tolist() == ref.metric.tolist()
    nb = tab[tab.metric == "net benefit"]
    assert set(nb.model) == {"cox", "all", "none"} and sorted(nb.threshold.unique()) == [0.2, 0.3]
    # fixed decimals on screen
    row = next(line for line in printed.out.splitlines() if "AUC(t)" in line)
    assert any(len(tok.split(".")[-1]) == 3 for tok in row.split() if tok.replace(".", "").isdigit())


def test_score_binary_cli_and_errors(tmp_path, capsys):
    d = load_breast_cancer(as_frame=True).frame
    p = 1 / (1 + np.exp(-(19.8 - 1.05 * d["mean radius"] - 0.22 * d["mean texture"])))
    path = tmp_path / "bc.csv"
    pd.DataFrame({"y": d.target, "p": p}).to_csv(path, index=False)
    out = tmp_path / "b.csv"
    assert cli.main(["score", str(path), "--outcome", "y", "--model", "radius=p", "--engine", "python",
                     "--out", str(out)]) == 0
    tab = pd.read_csv(out)
    ref = score_binary(d.target.to_numpy(), {"radius": p.to_numpy()}, engine="python")
    np.testing.assert_allclose(tab[tab.metric != "net benefit"].estimate, ref.estimate, rtol=1e-12)
    capsys.readouterr()
    assert cli.main(["score", str(path), "--outcome", "y", "--model", "radius=q"]) == cli.EXIT_DATA
    assert "column 'q' not found" in capsys.readouterr().err
    pd.DataFrame({"y": d.target + 1, "p": p}).to_csv(path, index=False)
    assert cli.main(["score", str(path), "--outcome", "y", "--model", "radius=p", "--engine", "python"]) == 3
    assert "pass y - 1" in capsys.readouterr().err


def test_every_cli_option_has_help():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    missing = [f"{name} {a.option_strings or a.dest}" for name, p in sub.choices.items() for a in p._actions
               if a.help is None]
    assert missing == []
