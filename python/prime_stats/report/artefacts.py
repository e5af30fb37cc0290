"""Write a study's report artefacts: tables as CSV, figures as PNG, and the ``artefacts.json`` index
that :func:`prime_stats.report.build.build_report` reads.

Calls merge into an existing index, so each step of a study run can add what it produced.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Mapping

import pandas as pd

INDEX = "artefacts.json"
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ENGINES = {"R", "python"}


def _check_key(key, what: str) -> str:
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError(f"{what} key {key!r} must be letters, digits, '_', '.' or '-' (it names a file)")
    return key


def read_artefacts(study_dir) -> dict:
    """The artefacts index of ``study_dir`` (empty sections when there is none yet)."""
    p = Path(study_dir) / INDEX
    art = json.loads(p.read_text()) if p.is_file() else {}
    return {k: dict(art.get(k, {})) for k in ("tables", "figures", "engines", "notes")}


def write_artefacts(study_dir, tables: Mapping[str, pd.DataFrame] | None = None,
                    figures: Mapping[str, object] | None = None, engines: Mapping[str, str] | None = None,
                    notes: Mapping[str, str] | None = None, dpi: int = 200) -> Path:
    """Save ``tables`` ({key: DataFrame}) to ``tables/<key>.csv`` and ``figures`` ({key: matplotlib
    Figure or path of a PNG}) to ``figures/<key>.png`` at ``dpi``, record ``engines``
    ({statistic: "R" | "python"}) and ``notes`` ({key: text}, e.g. why an artefact is absent), and
    merge everything into ``study_dir/artefacts.json``. Figures are closed after saving.
    Returns the index path."""
    root = Path(study_dir)
    root.mkdir(parents=True, exist_ok=True)
    art = read_artefacts(root)
    for key, df in (tables or {}).items():
        _check_key(key, "table")
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"table {key!r} must be a pandas DataFrame, got {type(df).__name__}")
        (root / "tables").mkdir(exist_ok=True)
        df.to_csv(root / "tables" / f"{key}.csv", index=False)
        art["tables"][key] = f"tables/{key}.csv"
    for key, fig in (figures or {}).items():
        _check_key(key, "figure")
        (root / "figures").mkdir(exist_ok=True)
        out = root / "figures" / f"{key}.png"
        if isinstance(fig, (str, Path)):
            src = Path(fig)
            if not src.is_file() or src.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
                raise ValueError(f"figure {key!r}: {src} is not a PNG file")
            if src.resolve() != out.resolve():
                shutil.copyfile(src, out)
        elif hasattr(fig, "savefig"):
            import matplotlib.pyplot as plt

            fig.savefig(out, dpi=dpi, format="png")
            plt.close(fig)
        else:
            raise TypeError(f"figure {key!r} must be a matplotlib Figure or a PNG path, got {type(fig).__name__}")
        art["figures"][key] = f"figures/{key}.png"
    for stat, eng in (engines or {}).items():
        if eng not in _ENGINES:
            raise ValueError(f"engine of {stat!r} must be 'R' or 'python', got {eng!r}")
        art["engines"][str(stat)] = eng
    art["notes"].update({str(k): str(v) for k, v in (notes or {}).items()})
    p = root / INDEX
    p.write_text(json.dumps(art, indent=2, sort_keys=True))
    return p
