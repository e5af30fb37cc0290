"""The TRIPOD+AI checklist map (Collins et al., BMJ 2024;385:e078378): 27 items, 52 sub-items.

The map lives in ``report/templates/tripod_ai_checklist.yaml`` (package data). Each
item names the report section(s) that report it automatically, or ``authors`` for what only the
authors can write (title, ethics, funding, ...).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

CHECKLIST_FILE = "tripod_ai_checklist.yaml"
N_MAIN_ITEMS = 27
N_SUB_ITEMS = 52
_ID = re.compile(r"^([1-9][0-9]?)([a-g]?)$")


@dataclass(frozen=True)
class ChecklistItem:
    id: str
    part: str
    topic: str
    text: str
    sections: tuple[str, ...]   # empty: for the authors
    see: tuple[str, ...] = ()   # sections that help the authors
    note: str = ""
    partial: str = ""           # what the report cannot give: the item is then only partly addressed

    @property
    def main(self) -> int:
        return int(_ID.match(self.id).group(1))


def checklist_path() -> Path:
    """``$PRIMESTATS_REPORTS/tripod_ai_checklist.yaml`` if set, else the copy shipped with the package
    (``report/templates/``)."""
    env = os.environ.get("PRIMESTATS_REPORTS")
    candidates = [Path(env) / CHECKLIST_FILE] if env else []
    candidates.append(Path(__file__).resolve().parent / "templates" / CHECKLIST_FILE)
    for c in candidates:
        if c.is_file():
            return c
    raise FileNotFoundError(f"TRIPOD+AI checklist not found (looked in: {', '.join(map(str, candidates))}); "
                            "set PRIMESTATS_REPORTS to the folder holding " + CHECKLIST_FILE)


def _as_tuple(value, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError(f"{where}: expected a section key or a list of keys, got {value!r}")


def load_checklist(path: str | Path | None = None, known_sections=None) -> list[ChecklistItem]:
    """Read and check the checklist map: all 52 sub-items of the 27 items, in order, each mapped to
    known section keys (``known_sections``) or to ``authors``."""
    p = Path(path) if path is not None else checklist_path()
    raw = yaml.safe_load(p.read_text())
    if not isinstance(raw, dict) or not isinstance(raw.get("items"), list):
        raise ValueError(f"{p}: expected a mapping with an 'items' list")
    items, seen = [], set()
    for i, r in enumerate(raw["items"]):
        where = f"{p}: item #{i + 1} ({r.get('id', '?') if isinstance(r, dict) else r!r})"
        if not isinstance(r, dict):
            raise ValueError(f"{where}: expected a mapping")
        missing = [k for k in ("id", "part", "topic", "text", "section") if not r.get(k)]
        if missing:
            raise ValueError(f"{where}: missing field(s) {missing}")
        iid = str(r["id"])
        if not _ID.match(iid) or iid in seen:
            raise ValueError(f"{where}: invalid or duplicated item id {iid!r}")
        seen.add(iid)
        sections = () if r["section"] == "authors" else _as_tuple(r["section"], where)
        see = _as_tuple(r.get("see"), where)
        if known_sections is not None:
            unknown = [s for s in sections + see if s not in known_sections]
            if unknown:
                raise ValueError(f"{where}: unknown report section(s) {unknown}")
        items.append(ChecklistItem(iid, str(r["part"]), str(r["topic"]), str(r["text"]), sections, see,
                                   str(r.get("note") or ""), str(r.get("partial") or "")))
    mains = sorted({it.main for it in items})
    if mains != list(range(1, N_MAIN_ITEMS + 1)) or len(items) != N_SUB_ITEMS:
        raise ValueError(f"{p}: expected the {N_MAIN_ITEMS} TRIPOD+AI items with {N_SUB_ITEMS} sub-items, "
                         f"found {len(mains)} items and {len(items)} sub-items")
    return items


def items_for_section(items: list[ChecklistItem], key: str) -> tuple[list[str], list[str]]:
    """(item ids the section reports, item ids it supports for the authors)."""
    return ([it.id for it in items if key in it.sections], [it.id for it in items if key in it.see])
