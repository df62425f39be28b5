"""Shared plumbing every stage may use: cache folders and atomic writes (:mod:`.paths`), devices,
threads and mixed precision (:mod:`.devices`). It imports nothing else of camseg."""
