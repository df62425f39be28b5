"""Where camseg keeps downloaded and cached files."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

CACHE_ENV_VAR = "CAMSEG_CACHE"


def cache_dir() -> Path:
    """The cache folder: ``$CAMSEG_CACHE`` if set, else the platform's user cache
    folder for camseg (``~/.cache/camseg`` on Linux). Not created here."""
    env = os.environ.get(CACHE_ENV_VAR)
    return Path(env) if env else Path(platformdirs.user_cache_dir("camseg"))
