"""The on-disk form of a trained router: a directory holding ``router.json`` (metadata: models,
features, embedder, calibrated thresholds, training summary, dataset hash) and
``weights.npz`` (named float64 arrays). Owns the format and its checks; knows nothing of
what the arrays mean."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from thrifty.errors import ConfigError

FORMAT = "thrifty-learned-router"
VERSION = 1
META_FILE = "router.json"
WEIGHTS_FILE = "weights.npz"

Array = npt.NDArray[np.float64]


def write_router_dir(path: Path, meta: Mapping[str, Any], arrays: Mapping[str, Array]) -> None:
    """Write (or overwrite) the two files; other files in the directory are left alone."""
    path.mkdir(parents=True, exist_ok=True)
    body = {"format": FORMAT, "version": VERSION, **meta}
    (path / META_FILE).write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2
                                                | orjson.OPT_SORT_KEYS) + b"\n")
    with (path / WEIGHTS_FILE).open("wb") as f:
        named: dict[str, Any] = {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()}
        np.savez(f, **named)


def read_router_dir(path: Path) -> tuple[dict[str, Any], dict[str, Array]]:
    meta_path, weights_path = path / META_FILE, path / WEIGHTS_FILE
    if not meta_path.is_file() or not weights_path.is_file():
        raise ConfigError(f"{path}: not a learned router directory (needs {META_FILE} and "
                          f"{WEIGHTS_FILE}); build one with `thrifty router train`")
    try:
        meta = orjson.loads(meta_path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{meta_path}: not valid JSON ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ConfigError(f"{meta_path}: not a {FORMAT} file")
    if meta.get("version") != VERSION:
        raise ConfigError(f"{meta_path}: format version {meta.get('version')!r}, this thrifty "
                          f"reads version {VERSION}; retrain with `thrifty router train`")
    with np.load(weights_path, allow_pickle=False) as npz:
        arrays = {k: np.asarray(npz[k], dtype=np.float64) for k in npz.files}
    return meta, arrays
