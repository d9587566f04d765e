"""Where dicenlp caches derived files, and the tokenizer part of a feature-cache key.

``CACHE_ROOT`` is ``$DICENLP_CACHE`` or ``~/.cache/dicenlp``: tokenised features (``features/<kind>/``), the
tiny offline models (``tiny-models/``) live there; deleting it only costs re-tokenising and rebuilding.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def cache_root() -> Path:
    """``$DICENLP_CACHE`` or ``~/.cache/dicenlp``, read when called."""
    return Path(os.environ.get("DICENLP_CACHE", Path.home() / ".cache" / "dicenlp"))


CACHE_ROOT = cache_root()
FEATURE_CACHE = CACHE_ROOT / "features"


def tokenizer_fingerprint(tokenizer) -> str:
    """SHA-1 of the fast tokenizer's definition (vocabulary, normaliser, pre-tokeniser, template) without its
    call state: ``truncation``/``padding`` are rewritten by every call with ``truncation=True``, which must not
    change the cache key of the next split or the next run."""
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    spec.pop("truncation", None)
    spec.pop("padding", None)
    return hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()
