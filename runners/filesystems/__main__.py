"""Start a loopback GlusterFS volume or JuiceFS mount, keep it up until Ctrl-C/SIGTERM, then tear it down.

    python -m tunesmith.runners.filesystems gluster --root /srv/tunesmith-gluster --name tsvol
    python -m tunesmith.runners.filesystems juicefs --root /srv/tunesmith-jfs --name tsjfs
    python -m tunesmith.runners.filesystems cleanup       # finish the teardown a kill -9 left pending

It prints the mount point on one line once it is up. The teardown is written to the change ledger
(``--ledger``, default ``$TUNESMITH_HOME/changes.jsonl`` or ``./.tunesmith/changes.jsonl``) before the
file system starts, so a ``kill -9`` is undone by ``cleanup`` or by the next ``tune run`` on that state.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from ..changes import ChangeLedger
from ..errors import TunesmithError


def _ledger(path: str | None) -> ChangeLedger:
    home = Path(os.environ.get("TUNESMITH_HOME", ".tunesmith"))
    return ChangeLedger(Path(path) if path else home / "changes.jsonl")


def main(argv: list[str] | None = None) -> int:
    """The command line above; returns the exit code (2 bad usage, 4 the file system failed)."""
    parser = argparse.ArgumentParser(prog="python -m tunesmith.runners.filesystems")
    parser.add_argument("kind", choices=["gluster", "juicefs", "cleanup"])
    parser.add_argument("--root", help="folder for the brick/metadata/storage and the mount point (root/mnt)")
    parser.add_argument("--name", default="tunesmith", help="volume name")
    parser.add_argument("--ledger", help="change ledger file")
    args = parser.parse_args(argv)
    ledger = _ledger(args.ledger)
    if args.kind == "cleanup":
        for line in ledger.restore_all():
            print(line)
        return 0
    if not args.root:
        print("error: --root is missing; fix: give a folder on a disk file system", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        if args.kind == "gluster":
            from .gluster import GlusterVolume as Fs
        else:
            from .juicefs import JuiceFSMount as Fs
        with Fs(args.root, args.name, ledger) as fs:
            print(fs.mountpoint, flush=True)
            try:
                signal.pause()
            except KeyboardInterrupt:
                pass
    except TunesmithError as exc:
        print(f"error: {exc.line()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
