"""AVAE (Plumerault et al., ICPR 2020) and a BiGAN baseline, on the networks of nets.py.

MODEL_SPECS here extends models.MODEL_SPECS; train.model_specs() merges the two.
"""

from __future__ import annotations

from .models import ModelSpec

MODEL_SPECS: dict[str, ModelSpec] = {}
