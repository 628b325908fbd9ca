"""Put one trial's settings in place before its runs and take them back after, through the change ledger.

``TrialSettings(settings, ledger, workdir)`` is a context manager. On entry it applies every outside
setting (Gluster volume options, Lustre client tunables, block-device read-ahead and scheduler, JuiceFS
mount options), each written to the ledger *before* it is changed; on exit (normal end, failure, Ctrl-C)
it restores them, newest first. A process killed in between leaves the entries pending, and the next
study start (``ChangeLedger.restore_all``) restores them. Settings the workload applies itself (ROMIO
hints, HDF5 properties, POSIX knobs) become environment variables, and ROMIO hints also a ``ROMIO_HINTS``
file in the trial's folder. A setting that needs root is skipped without it, with a note that says so.
Lustre striping is set on the trial's fresh output folder by ``prepare_output`` before each run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..changes import ChangeLedger
from ..errors import InfrastructureError
from . import block, gluster, lustre
from .client import SETTINGS_ENV  # JSON {"romio": {...}, "hdf5": {...}, "posix": {...}}
from .shell import ApplyError, is_root, run_tool
from .spec import STRIPE_KEYS, Setting

WORKLOAD_FAMILIES = ("romio", "hdf5", "posix")


def romio_value(value: Any) -> str:
    """A ROMIO hint value: booleans are ``enable``/``disable`` (``romio_cb_write`` and friends)."""
    if isinstance(value, bool):
        return "enable" if value else "disable"
    return str(value)


class TrialSettings:
    """Context manager applying ``{Setting: value}`` for one trial; ``env`` and ``notes`` for the caller."""

    def __init__(self, settings: dict[Setting, Any], ledger: ChangeLedger | None, workdir: Path) -> None:
        self.settings = settings
        self.ledger = ledger
        self.workdir = Path(workdir)
        self.env: dict[str, str] = {}
        self.notes: list[str] = []
        self._entries: list[int] = []
        self._stripes: dict[str, Any] = {}
        self._striped: set[str] = set()

    # -- entering -----------------------------------------------------------------------------------
    def __enter__(self) -> TrialSettings:
        try:
            self._workload_side()
            outside = {s: v for s, v in self.settings.items() if s.family not in WORKLOAD_FAMILIES}
            for setting, value in outside.items():
                if setting.needs_root and not is_root():
                    self.notes.append(f"setting {setting.text}={value} skipped: it needs root")
                    continue
                if setting.family == "lustre" and setting.key in STRIPE_KEYS:
                    self._stripes[setting.key] = value
                elif setting.family == "lustre":
                    self._lctl(setting, value)
                elif setting.family == "gluster":
                    self._gluster(setting, value)
                elif setting.family == "block":
                    self._block(setting, value)
            self._juicefs({s: v for s, v in outside.items() if s.family == "juicefs"})
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _record(self, kind: str, target: str, undo: dict[str, Any]) -> None:
        if self.ledger is None:
            raise InfrastructureError(f"cannot change {target} without a change ledger",
                                      "run the trial through a study session (tune run)")
        self._entries.append(self.ledger.record(kind, target, undo))

    def _workload_side(self) -> None:
        grouped: dict[str, dict[str, Any]] = {}
        for setting, value in self.settings.items():
            if setting.family in WORKLOAD_FAMILIES:
                grouped.setdefault(setting.family, {})[setting.key] = value
                self.env[setting.env_name] = romio_value(value) if setting.family == "romio" else str(value)
        if "romio" in grouped:
            hints = self.workdir / "romio_hints"
            hints.parent.mkdir(parents=True, exist_ok=True)
            hints.write_text("".join(f"{k} {romio_value(v)}\n" for k, v in grouped["romio"].items()))
            self.env["ROMIO_HINTS"] = str(hints)
        if grouped:
            self.env[SETTINGS_ENV] = json.dumps(grouped, sort_keys=True)

    def _lctl(self, setting: Setting, value: Any) -> None:
        old = lustre.read_params(setting.key)
        argv = lustre.set_param_argv(setting.key, value)  # refuses checksums before anything is recorded
        self._record("lustre_param", setting.key, {"values": old})
        run_tool(argv)

    def _gluster(self, setting: Setting, value: Any) -> None:
        undo = gluster.current(setting.scope, setting.key)
        if undo["value"] == gluster.gluster_value(value):
            return  # already so: nothing to change or restore
        self._record("gluster_option", f"{setting.scope}:{setting.key}", undo)
        gluster.set_option(setting.scope, setting.key, value)

    def _block(self, setting: Setting, value: Any) -> None:
        if setting.key == "read_ahead":
            old = block.read_ahead(setting.scope)
            argv = block.setra_argv(setting.scope, value)
            self._record("block_read_ahead", setting.scope, {"device": setting.scope, "sectors": old})
            run_tool(argv)
        else:
            path = block.scheduler_file(setting.scope)
            active, _ = block.parse_scheduler(path.read_text())
            self._record("block_scheduler", setting.scope, {"path": str(path), "value": active})
            block.set_scheduler(path, str(value))

    def _juicefs(self, options: dict[Setting, Any]) -> None:
        from ..filesystems import juicefs

        by_mount: dict[str, dict[str, Any]] = {}
        for setting, value in options.items():
            by_mount.setdefault(setting.scope, {})[setting.key] = value
        for mountpoint, changes in by_mount.items():
            old = juicefs.read_state(mountpoint)["options"]
            new = {**old, **changes}
            if new == old:
                continue
            self._record("juicefs_options", mountpoint, {"mountpoint": mountpoint, "options": old})
            juicefs.remount(mountpoint, new)

    # -- each run ------------------------------------------------------------------------------------
    def prepare_output(self, out: Path) -> None:
        """Stripe the (fresh, empty) output folder before a run, when the trial sets Lustre striping."""
        if not self._stripes:
            return
        argv = lustre.setstripe_argv(out, self._stripes)
        if str(out) not in self._striped:
            self._record("lustre_stripe", str(out), {"path": str(out)})
            self._striped.add(str(out))
        run_tool(argv)
        got = lustre.parse_getstripe(run_tool(["lfs", "getstripe", "-d", str(out)]))
        want = self._stripes.get("stripe_count")
        if want is not None and int(want) != -1 and got["stripe_count"] != int(want):
            raise ApplyError(f"{out} has stripe_count {got['stripe_count']} after setting {want}",
                             "check the OST count and the file system's striping limits")

    # -- leaving -------------------------------------------------------------------------------------
    def __exit__(self, *exc: object) -> None:
        """Restore every change, newest first; a failed restore stays pending in the ledger and is noted."""
        while self._entries:
            entry_id = self._entries.pop()
            try:
                self.ledger.restore(entry_id)  # type: ignore[union-attr]
            except Exception as err:  # noqa: BLE001 - the entry stays pending; the next start retries it
                self.notes.append(f"restore of change #{entry_id} failed ({err}); retried at the next start")
