"""Every Python snippet of README.md runs, in order, in one namespace (as typed at a Python prompt: the
value of a bare expression is printed, so result objects' reprs run too). The snippets use data that
ship with installed packages (lifelines, scikit-survival, scikit-learn) and the package's simulator.
The R snippets run in tests/testthat/test-readme.R."""
import ast
import contextlib
import io
import re
from pathlib import Path

import pandas as pd

README = Path(__file__).resolve().parents[2] / "README.md"


def python_snippets() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", README.read_text(), flags=re.S | re.M)


def run_snippet(code: str, namespace: dict) -> list[str]:
    """Execute ``code``; return the reprs of its bare expressions (what a prompt would print)."""
    shown = []
    for node in ast.parse(code).body:
        if isinstance(node, ast.Expr):
            value = eval(compile(ast.Expression(node.value), "README.md", "eval"), namespace)
            if value is not None:
                shown.append(repr(value))
        else:
            exec(compile(ast.Module([node], type_ignores=[]), "README.md", "exec"), namespace)
    return shown


def test_every_python_snippet_of_the_readme_runs(tmp_path, monkeypatch):
    snippets = python_snippets()
    assert len(snippets) >= 4
    monkeypatch.chdir(tmp_path)                  # the study snippet writes sim/ and new/ here
    ns: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        shown = [run_snippet(code, ns) for code in snippets]
    assert all(shown), "every snippet shows at least one result"
    km_repr = shown[0][0]
    assert km_repr.startswith("Kaplan-Meier") and len(km_repr.splitlines()) == 4      # print.survfit-sized
    assert "HR high vs low" in shown[1][3]                                           # the stratification
    nar = ns["sv"].numbers_at_risk("time", "status", "sex", data=ns["lung"], times=[0, 180, 365])
    assert list(nar.columns[:5]) == ["group", "time", "n_risk", "n_event", "n_censor"]
    assert isinstance(ns["result"].metrics, pd.DataFrame) and (ns["result"].metrics["split"] == "external").any()
