"""The plugin manager: built-in plugins, entry-point plugins, register/unregister,
and the registry of PID minters that plugins contribute.

Plugins load lazily, on the first hook call, from the ``gitrecords``
entry-point group. The built-in ``recid`` minter (:mod:`gitrecords.pids`) is
registered like any third-party plugin.
"""

from __future__ import annotations

import threading
from typing import Any

import pluggy

from . import hookspecs, pids
from .errors import GitRecordsError, PIDError

ENTRY_POINT_GROUP = "gitrecords"

_pm: pluggy.PluginManager | None = None
_lock = threading.Lock()


def make_plugin_manager(load_entry_points: bool = True) -> pluggy.PluginManager:
    """A new plugin manager with the hook specs, built-ins and installed plugins."""
    pm = pluggy.PluginManager("gitrecords")
    pm.add_hookspecs(hookspecs)
    pm.register(pids, name="gitrecords.pids")
    if load_entry_points:
        _load_entry_points(pm)
    pm.check_pending()
    return pm


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    """Register the plugins of the ``gitrecords`` entry-point group, as pluggy's
    ``load_setuptools_entrypoints`` does, but a plugin that cannot be imported is named in one
    line (its entry point and distribution), not an "unexpected" ModuleNotFoundError."""
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if pm.get_plugin(entry.name) is not None or pm.is_blocked(entry.name):
            continue
        try:
            plugin = entry.load()
        except Exception as err:
            dist = getattr(entry, "dist", None)
            where = f" of {dist.name} {dist.version}" if dist is not None else ""
            raise GitRecordsError(
                f"plugin {entry.name!r} ({entry.value}{where}, entry-point group {ENTRY_POINT_GROUP!r}) "
                f"cannot be loaded: {type(err).__name__}: {err}; fix or uninstall it"
            ) from None
        pm.register(plugin, name=entry.name)


def get_plugin_manager() -> pluggy.PluginManager:
    global _pm
    if _pm is None:
        with _lock:
            if _pm is None:
                _pm = make_plugin_manager()
    return _pm


def register(plugin: Any, name: str | None = None) -> str | None:
    """Register an object or module holding ``@hookimpl`` functions."""
    pm = get_plugin_manager()
    result = pm.register(plugin, name=name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError:
        pm.unregister(plugin)  # a refused plugin must not break every later registration
        raise
    return result


def unregister(plugin: Any) -> Any:
    return get_plugin_manager().unregister(plugin)


def hook() -> Any:
    return get_plugin_manager().hook


def minters() -> dict[str, pids.Minter]:
    """All known PID minters by name, from every plugin."""
    found: dict[str, pids.Minter] = {}
    for contribution in hook().gitrecords_pid_minters():
        found.update(contribution or {})
    return found


def get_minter(name: str) -> pids.Minter:
    """The minter called ``name``; :class:`PIDError` names the known ones if there is none."""
    known = minters()
    if name not in known:
        raise PIDError(f"unknown PID minter {name!r}; known minters: {', '.join(sorted(known))}")
    return known[name]
