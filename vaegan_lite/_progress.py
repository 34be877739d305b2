"""Progress bars, in a module of its own (it imports nothing of the package) so that every layer
can show one: tqdm's notebook bar in Jupyter, its text bar elsewhere."""

from __future__ import annotations

import os
from typing import Any


def progress_bar(**kwargs: Any) -> Any:
    """A ``tqdm.auto`` bar, or a silent one where $TQDM_DISABLE is set (``make book`` sets it).

    tqdm's own text bar reads $TQDM_DISABLE but its notebook bar does not; a static page needs
    it, as the notebook bar is a widget that loads require.js and a widget manager from CDNs.
    """
    from tqdm.auto import tqdm  # only when a bar is shown: tqdm.auto imports IPython's parts

    if os.environ.get("TQDM_DISABLE", "").lower() not in ("", "0", "false"):
        kwargs["disable"] = True
    return tqdm(**kwargs)
