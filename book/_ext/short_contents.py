"""Sphinx extension for book/api.md: the page's "Contents" lists its sections, classes,
functions and constants, not every field and method of a class.

Sphinx gives every documented object an entry (``toc_object_entries``): with each setting's
fields, the reference page's list ran to some 150 lines, longer than the page's own screens.
The members stay on the page, in the general index and in the search.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from sphinx import addnodes

# the objects documented inside a class; a module's own functions, classes and data stay listed
MEMBERS = {"method", "attribute", "property", "classmethod", "staticmethod"}


def hide_members(app: Any, doctree: nodes.document) -> None:
    """doctree-read, before Sphinx collects the contents: members get no entry."""
    for desc in doctree.findall(addnodes.desc):
        if desc.get("domain") == "py" and desc.get("objtype") in MEMBERS:
            desc["no-contents-entry"] = desc["nocontentsentry"] = True


def setup(app: Any) -> dict[str, Any]:
    # the contents are collected at doctree-read with the default priority, 500
    app.connect("doctree-read", hide_members, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
