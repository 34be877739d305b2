"""Sphinx extension for book/api.md: a dataclass field made by a factory (TrainConfig's ``model``
and ``step``) shows its factory's call as its default in the class's signature.

autodoc writes such a default as ``<factory>``, which Sphinx cannot parse as Python: the whole
signature then falls back to plain text, without links or the one-parameter-a-line layout.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any


def factory_defaults(
    app: Any,
    what: str,
    name: str,
    obj: Any,
    options: Any,
    signature: str | None,
    return_annotation: str | None,
) -> tuple[str | None, str | None] | None:
    """autodoc-process-signature: ``field: T = <factory>`` -> ``field: T = Factory()``."""
    if what != "class" or not signature or not dataclasses.is_dataclass(obj):
        return None
    for f in dataclasses.fields(obj):
        factory = f.default_factory
        if factory is not dataclasses.MISSING:
            call = f"{getattr(factory, '__qualname__', 'factory')}()"
            signature = re.sub(rf"\b({re.escape(f.name)}: [^=,]+ = )<factory>", rf"\g<1>{call}",
                               signature)  # fmt: skip
    return signature, return_annotation


def setup(app: Any) -> dict[str, Any]:
    app.connect("autodoc-process-signature", factory_defaults)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
