"""prime-stats: the PRIME multimodal HCC response (PRIME-R) and survival (PRIME-S) models,
built and validated without leakage."""
__version__ = "0.1.0"
