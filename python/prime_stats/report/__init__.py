"""The TRIPOD+AI validation report (HTML and PDF) and its figures."""
from .build import build_report

__all__ = ["build_report"]
