"""Gene sets: the one GMT reader and writer, the immune-cell sets shipped with prime-stats, and
where the Hallmark collection is found (never relative to the working directory)."""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Iterable, Mapping

IMMUNE_GMT = "cytopus_immune_identities.gmt"
HALLMARK_GMT = "h.all.v7.5.1.symbols.gmt"
GO_BP_GMT = "go_bp.symbols.gmt"


def read_gmt(path: str | Path, *, with_descriptions: bool = False):
    """Read a GMT file (name, description, genes...; tab-separated) into {set name: genes}, or with
    ``with_descriptions`` into ({set name: genes}, {set name: description})."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"GMT file {path} not found")
    sets: dict[str, list[str]] = {}
    descriptions: dict[str, str] = {}
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) < 3:
                raise ValueError(f"{path}, line {lineno}: a GMT line needs name, description and at "
                                 f"least one gene, separated by tabs")
            name = parts[0].strip()
            if name in sets:
                raise ValueError(f"{path}, line {lineno}: gene set {name!r} appears twice")
            genes = list(dict.fromkeys(g.strip() for g in parts[2:] if g.strip()))
            if not genes:
                raise ValueError(f"{path}, line {lineno}: gene set {name!r} has no genes")
            sets[name] = genes
            descriptions[name] = parts[1].strip()
    if not sets:
        raise ValueError(f"{path} holds no gene sets")
    return (sets, descriptions) if with_descriptions else sets


def write_gmt(gene_sets: Mapping[str, Iterable[str]], path: str | Path,
              descriptions: Mapping[str, str] | None = None) -> Path:
    """Write {set name: genes} as a GMT file (description column from ``descriptions`` or 'NA')."""
    path = Path(path)
    descriptions = descriptions or {}
    with path.open("w", encoding="utf-8") as fh:
        for name, genes in gene_sets.items():
            genes = [str(g) for g in genes]
            if "\t" in name or any("\t" in g for g in genes):
                raise ValueError(f"gene set {name!r}: names and genes may not contain tabs")
            if not genes:
                raise ValueError(f"gene set {name!r} is empty")
            fh.write("\t".join([name, descriptions.get(name, "NA"), *genes]) + "\n")
    return path


def immune_gene_sets() -> dict[str, list[str]]:
    """Immune-cell identity gene sets shipped with prime-stats (from the Cytopus knowledge base,
    MIT licence; see ``prime_stats/data/README.md``)."""
    ref = resources.files("prime_stats").joinpath("data", IMMUNE_GMT)
    with resources.as_file(ref) as p:
        return read_gmt(p)


def hallmark_gene_sets_path(path: str | Path | None = None) -> Path | None:
    """The MSigDB Hallmark GMT: ``path`` if given (it must exist), else ``$PRIMESTATS_GENESETS``,
    else ``shared/data/genesets/`` beside the prime-stats checkout; None when none is found."""
    if path:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"gene-set file not found: {p}")
        return p
    candidates = [Path(__file__).resolve().parents[3] / "shared" / "data" / "genesets" / HALLMARK_GMT]
    env = os.environ.get("PRIMESTATS_GENESETS")
    if env:
        candidates.insert(0, Path(env))
    return next((c.resolve() for c in candidates if c.is_file()), None)


def go_gene_sets_path(cache_dir: str | Path | None = None) -> Path | None:
    """The GO Biological Process GMT (written once by :func:`prime_stats.omics.export_go_gene_sets`):
    ``$PRIMESTATS_GO_GMT``, else ``shared/data/genesets/`` beside the checkout, else ``cache_dir``;
    None when none is found."""
    candidates = [Path(__file__).resolve().parents[3] / "shared" / "data" / "genesets" / GO_BP_GMT]
    if cache_dir is not None:
        candidates.append(Path(cache_dir) / GO_BP_GMT)
    env = os.environ.get("PRIMESTATS_GO_GMT")
    if env:
        candidates.insert(0, Path(env))
    return next((c.resolve() for c in candidates if c.is_file()), None)
