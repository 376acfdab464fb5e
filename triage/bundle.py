"""Model bundles: a versioned directory `models/<name>/` with manifest.json and one sub-directory per component.

A bundle is written to a temporary directory and renamed into place, so a failed save leaves nothing behind, and
an existing version is never overwritten. `models/active.json` names the promoted bundle and keeps the history
that `rollback` walks back through (the BentoML model-store idea: the pointer moves only after a good save).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from triage.errors import BundleError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ACTIVE_POINTER = "active.json"
REQUIRED_KEYS = ("format_version", "version", "created_at", "labels", "components", "libraries")


def library_versions() -> dict[str, str]:
    import numpy
    import scipy
    import sklearn

    import triage

    versions = {
        "python": platform.python_version(),
        "triage": triage.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
    }
    try:
        import jieba

        versions["jieba"] = jieba.__version__
    except ImportError:  # pragma: no cover - jieba is a hard dependency
        pass
    return versions


def file_digest(path: Path) -> dict[str, Any]:
    """sha256 and row count of a data file, for the manifest's record of what a model was trained on."""
    digest = hashlib.sha256()
    rows = 0
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
            rows += chunk.count(b"\n")
    return {"path": str(path), "sha256": digest.hexdigest(), "lines": rows}


@dataclass
class Bundle:
    """A loaded bundle: the manifest plus the component objects."""

    path: Path
    manifest: dict[str, Any]
    components: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    def __getattr__(self, name: str) -> Any:
        components = self.__dict__.get("components", {})
        if name in components:
            return components[name]
        raise AttributeError(name)


def _loaders() -> dict[str, Any]:
    # Imported lazily: loading a bundle should not import components it does not contain.
    def router(path: Path):
        from triage.routing import Router

        return Router.load(path)

    def departments(path: Path):
        from triage.departments import DepartmentTable

        return DepartmentTable.load(path / "departments.yaml")

    def risk(path: Path):
        from triage.risk import RiskDetector

        return RiskDetector.load(path)

    return {"router": router, "departments": departments, "risk": risk}


def read_manifest(path: Path) -> dict[str, Any]:
    manifest_path = Path(path) / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"{path} is not a model bundle: {MANIFEST} is missing")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BundleError(f"{manifest_path} is not valid JSON: {exc}") from exc
    missing = [key for key in REQUIRED_KEYS if key not in manifest]
    if missing:
        raise BundleError(f"{manifest_path} lacks {', '.join(missing)}")
    if manifest["format_version"] != FORMAT_VERSION:
        raise BundleError(
            f"bundle {path} has format {manifest['format_version']}, this library reads format {FORMAT_VERSION}"
        )
    for name, entry in manifest["components"].items():
        if not (Path(path) / entry["path"]).exists():
            raise BundleError(f"bundle {path} is incomplete: component {name!r} ({entry['path']}) is missing")
    return manifest


def check_libraries(manifest: dict[str, Any]) -> None:
    """Refuse a bundle pickled by another scikit-learn minor version; warn on lesser differences."""
    built = manifest["libraries"]
    here = library_versions()
    built_sklearn = str(built.get("scikit-learn", "")).split(".")[:2]
    here_sklearn = here["scikit-learn"].split(".")[:2]
    if built_sklearn and built_sklearn != here_sklearn:
        raise BundleError(
            f"bundle was built with scikit-learn {built.get('scikit-learn')}, this environment has "
            f"{here['scikit-learn']}: retrain it with train.py or install the matching version"
        )
    for name in ("numpy", "jieba", "triage"):
        if name in built and built[name] != here.get(name):
            warnings.warn(f"bundle built with {name} {built[name]}, running {here.get(name)}", stacklevel=3)


def load(path: str | os.PathLike, *, components: tuple[str, ...] | None = None) -> Bundle:
    """Check the manifest before anything is unpickled, then load the components it lists."""
    path = Path(path)
    manifest = read_manifest(path)
    check_libraries(manifest)
    loaders = _loaders()
    loaded: dict[str, Any] = {}
    for name, entry in manifest["components"].items():
        if components is not None and name not in components:
            continue
        if name not in loaders:
            raise BundleError(f"bundle {path} has unknown component {name!r}")
        loaded[name] = loaders[name](path / entry["path"])
    return Bundle(path=path, manifest=manifest, components=loaded)


def save(
    directory: str | os.PathLike,
    *,
    components: dict[str, Any],
    labels: list[str],
    metrics: dict[str, Any] | None = None,
    data_sources: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a new bundle atomically. Each component object must have `save(dir)`.

    The bundle's version is its directory name; an existing directory is never overwritten.
    """
    target = Path(directory)
    if target.exists():
        raise BundleError(f"{target} exists: a bundle version is never overwritten; choose a new --out name")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        entries = {}
        for name, obj in components.items():
            (staging / name).mkdir()
            obj.save(staging / name)
            entries[name] = {"path": name, "class": type(obj).__name__}
        manifest = {
            "format_version": FORMAT_VERSION,
            "name": target.name,
            "version": target.name,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "labels": list(labels),
            "metrics": metrics or {},
            "data_sources": data_sources or [],
            "libraries": library_versions(),
            "components": entries,
            **(extra or {}),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def update_manifest(path: str | os.PathLike, **fields: Any) -> None:
    """Add fields (e.g. evaluation metrics) to a saved bundle's manifest, atomically."""
    manifest_path = Path(path) / MANIFEST
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest.update(fields)
    tmp = manifest_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    os.replace(tmp, manifest_path)


# ------------------------------------------------------------------------------------------ promote / rollback


def list_bundles(models_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Every readable bundle under `models_dir`, newest first, with whether it is the active one."""
    models_dir = Path(models_dir)
    active = active_name(models_dir, required=False)
    found = []
    for child in sorted(models_dir.iterdir()) if models_dir.is_dir() else []:
        if child.name.startswith(".") or not (child / MANIFEST).is_file():
            continue
        try:
            manifest = read_manifest(child)
        except BundleError as exc:
            found.append({"name": child.name, "error": exc.message, "active": False})
            continue
        found.append(
            {
                "name": child.name,
                "created_at": manifest["created_at"],
                "labels": len(manifest["labels"]),
                "metrics": manifest.get("metrics", {}),
                "active": child.name == active,
            }
        )
    found.sort(key=lambda row: row.get("created_at", ""), reverse=True)
    return found


def _read_pointer(models_dir: Path) -> dict[str, Any]:
    pointer = models_dir / ACTIVE_POINTER
    if not pointer.is_file():
        return {"active": None, "history": []}
    return json.loads(pointer.read_text(encoding="utf-8"))


def _write_pointer(models_dir: Path, data: dict[str, Any]) -> None:
    tmp = models_dir / (ACTIVE_POINTER + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    os.replace(tmp, models_dir / ACTIVE_POINTER)


def active_name(models_dir: str | os.PathLike, *, required: bool = True) -> str | None:
    name = _read_pointer(Path(models_dir)).get("active")
    if name is None and required:
        raise BundleError(f"no bundle is promoted in {models_dir}: run `triage bundle promote NAME`")
    return name


def resolve(models_dir: str | os.PathLike, name: str | None = None) -> Path:
    """The directory of bundle `name`, or of the active bundle when `name` is None."""
    models_dir = Path(models_dir)
    chosen = name or active_name(models_dir)
    path = Path(chosen) if Path(chosen).is_absolute() else models_dir / chosen
    if not path.is_dir():
        raise BundleError(f"bundle {chosen!r} not found in {models_dir}")
    return path


def promote(models_dir: str | os.PathLike, name: str) -> str:
    """Make `name` the active bundle after checking that it loads. Returns the previous active name."""
    models_dir = Path(models_dir)
    path = resolve(models_dir, name)
    load(path)  # a bundle that does not load is never promoted
    pointer = _read_pointer(models_dir)
    previous = pointer.get("active")
    if previous == path.name:
        return previous
    history = [h for h in pointer.get("history", []) if h != path.name]
    if previous:
        history.append(previous)
    _write_pointer(models_dir, {"active": path.name, "history": history[-20:], "promoted_at": _now()})
    log.info("promoted bundle %s (previous %s)", path.name, previous)
    return previous


def rollback(models_dir: str | os.PathLike) -> str:
    """Re-activate the bundle that was active before the current one. Returns its name."""
    models_dir = Path(models_dir)
    pointer = _read_pointer(models_dir)
    history = list(pointer.get("history", []))
    while history:
        candidate = history.pop()
        if (models_dir / candidate / MANIFEST).is_file():
            _write_pointer(models_dir, {"active": candidate, "history": history, "promoted_at": _now()})
            log.info("rolled back from %s to %s", pointer.get("active"), candidate)
            return candidate
    raise BundleError("nothing to roll back to: no earlier promoted bundle is left")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
