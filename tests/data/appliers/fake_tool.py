"""A stand-in for gluster, lctl, lfs and blockdev in tests: state in $FAKE_TOOL_STATE (JSON), every call logged."""

import fnmatch
import json
import os
import sys
from pathlib import Path

state_path = Path(os.environ["FAKE_TOOL_STATE"])
state = json.loads(state_path.read_text())
tool, args = sys.argv[1], sys.argv[2:]
state.setdefault("calls", []).append([tool, *args])


def save() -> None:
    state_path.write_text(json.dumps(state))


def fail(msg: str) -> None:
    save()
    print(msg, file=sys.stderr)
    sys.exit(1)


if tool == "gluster":
    args = [a for a in args if not a.startswith("--mode")]
    vols = state["gluster"]
    if args[:2] == ["volume", "list"]:
        print("\n".join(vols) or "No volumes present in cluster")
    elif args[:2] == ["volume", "get"]:
        opt = vols[args[2]][args[3]]
        print(f"{'Option':<40} {'Value':<40}\n{'------':<40} {'-----':<40}")
        print(f"{args[3]:<40} {opt['set'] if opt['set'] is not None else opt['default']:<40}")
    elif args[:2] == ["volume", "info"]:
        print(f" \nVolume Name: {args[2]}\nType: Distribute\nStatus: Started\nOptions Reconfigured:")
        for name, opt in vols[args[2]].items():
            if opt["set"] is not None:
                print(f"{name}: {opt['set']}")
        print("nfs.disable: on")
    elif args[:2] == ["volume", "set"]:
        vols[args[2]][args[3]]["set"] = args[4]
    elif args[:2] == ["volume", "reset"]:
        vols[args[2]][args[3]]["set"] = None
    else:
        fail(f"fake gluster: unknown {args}")
elif tool == "lctl":
    params = state["lctl"]
    if "-P" in args:
        state["forbidden"] = True
        fail("-P used")
    if args[0] == "get_param":
        for name, value in params.items():
            if fnmatch.fnmatch(name, args[1]):
                print(f"{name}={value}")
    elif args[0] == "set_param":
        pattern, value = args[1].split("=", 1)
        hit = [n for n in params if fnmatch.fnmatch(n, pattern)]
        if not hit:
            fail(f"error: set_param: param_path '{pattern}': No such file or directory")
        for name in hit:
            params[name] = value
elif tool == "blockdev":
    if args[0] == "--getra":
        print(state["blockdev"][args[1]])
    elif args[0] == "--setra":
        state["blockdev"][args[2]] = int(args[1])
elif tool == "lfs" and args[0] == "getstripe":  # the directory form, from the last setstripe -c
    sets = [c for c in state["calls"] if c[:2] == ["lfs", "setstripe"] and "-c" in c]
    count = sets[-1][sets[-1].index("-c") + 1] if sets else "1"
    print(f"stripe_count:  {state.get('lfs_count_override', count)} stripe_size:   1048576 pattern:  raid0 stripe_offset: -1")
elif tool == "lfs":
    pass  # setstripe calls are only logged
save()
