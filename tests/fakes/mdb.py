"""A stand-in for illumos mdb(1) in tests: replays a recorded session for the dump it is given.

Called as the real invocation is, `mdb -e '<script>' unix.N vmcore.N` (or `mdb -e '<script>' core`).
The dump's host (the nodename in its dumphdr_t) names the recorded session FAKE_MDB_SESSIONS/<host>.mdb,
an interactive session ('> dcmd' lines, each followed by what that dcmd printed). Each `::echo ARGS`
of the script prints ARGS; each other dcmd prints its recorded output (nothing when not recorded).
A dcmd named in FAKE_MDB_UNKNOWN (comma-separated) fails as an unknown dcmd does: mdb prints its
error and drops the rest of the script. Directives on a session's first lines ('#!fake sleep N', '#!fake garbage', '#!fake fail MESSAGE')
make it hang, print binary garbage, or fail as mdb does when it cannot load a dump. Every call is
appended to FAKE_TOOLS_LOG as one JSON line.
"""

import json
import os
import struct
import sys
import time


def header_host(path):
    try:
        with open(path, "rb") as f:
            head = f.read(600)
    except OSError:
        return None
    for order in "<>":
        if len(head) >= 16 and struct.unpack(order + "I", head[:4])[0] == 0xDEFEC8ED:
            return head[56 + 257:56 + 514].split(b"\0", 1)[0].decode()
    return None


def main(argv):
    with open(os.environ["FAKE_TOOLS_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps({"tool": "mdb", "argv": argv}) + "\n")
    if len(argv) < 3 or argv[0] != "-e":
        sys.stderr.write("usage: mdb -e cmds [object [core] | core | suffix]\n")
        return 2
    script, targets = argv[1], argv[2:]
    core = targets[-1]
    if not os.path.exists(core):
        sys.stderr.write(f"mdb: failed to open {core}: No such file or directory\n")
        return 1
    host = header_host(core) if len(targets) == 2 else os.path.basename(core)
    session = os.path.join(os.environ["FAKE_MDB_SESSIONS"], f"{host}.mdb") if host else ""
    if not host or not os.path.exists(session):
        sys.stderr.write(f"mdb: failed to initialize target: failed to read dump header from {core}\n")
        return 1
    with open(session, encoding="utf-8") as f:
        lines = f.read().splitlines()
    outputs, current = {}, None
    for line in lines:
        if line.startswith("#!fake "):
            what = line.split()[1:]
            if what[0] == "sleep":
                time.sleep(float(what[1]))
            elif what[0] == "garbage":
                sys.stdout.buffer.write(bytes(range(256)) * 4)
                return 0
            elif what[0] == "fail":
                sys.stderr.write("mdb: " + " ".join(what[1:]) + "\n")
                return 1
        elif line.startswith("> "):
            current = line[2:]
            outputs[current] = []
        elif current is not None:
            outputs[current].append(line)
    unknown = set(filter(None, os.environ.get("FAKE_MDB_UNKNOWN", "").split(",")))
    for part in script.split(";"):
        part = part.strip()
        if part.startswith("::echo "):
            print(part[len("::echo "):].strip("'\""))
        elif part.split()[0] in unknown:
            # as mdb does: the error, and the rest of the -e string is discarded
            sys.stdout.flush()
            sys.stderr.write(f"mdb: invalid command '{part.split()[0]}': unknown dcmd name\n")
            return 1
        else:
            for line in outputs.get(part, []):
                print(line)
    return 0


sys.exit(main(sys.argv[1:]))
