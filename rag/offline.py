"""Loading Hugging Face models with no network, once, on first use.

Every model this project loads through transformers (the embedder, the int8 export, the optional
reranker) must come from a local folder: the hub client is told it is offline before the first
import, so a missing model fails at once instead of retrying a network that is not there. Models
are heavy, so objects that hold one load it lazily, exactly once even when several threads ask.
"""

from __future__ import annotations

import os
import threading
from typing import Any

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
}


def offline_env() -> None:
    """Sets the offline and quiet switches, leaving any value the user already chose."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


class LazyModel:
    """Mixin: ``self.model`` calls ``self._load()`` once, under a lock, on first access.

    The lock is shared by all models: loads are rare and serialising them keeps two threads
    from loading two copies of the same weights at once on a small machine.
    """

    _model: Any = None
    _model_lock = threading.Lock()

    def _load(self) -> Any:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    @property
    def model(self) -> Any:
        if self._model is None:
            with self._model_lock:
                if self._model is None:
                    self._model = self._load()
        return self._model
