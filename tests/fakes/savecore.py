"""A stand-in for illumos savecore(8) in tests: `savecore -f vmdump.N DIR` writes DIR/unix.N and DIR/vmcore.N.

Like the real one it takes N from the file name (getbounds), refuses a file without the dump magic
with 'bad magic number' and exit status 0, and writes nothing else. A host named 'nospace' fails
as savecore does when the directory is too small. Every call is appended to FAKE_TOOLS_LOG.
"""

import json
import os
import re
import struct
import sys


def main(argv):
    with open(os.environ["FAKE_TOOLS_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps({"tool": "savecore", "argv": argv}) + "\n")
    if len(argv) != 3 or argv[0] != "-f":
        sys.stderr.write("usage: savecore [-Lvd] [-f dumpfile] [dirname]\n")
        return 1
    dumpfile, savedir = argv[1], argv[2]
    m = re.match(r"vmdump\.(\d+)$", os.path.basename(dumpfile))
    n = int(m.group(1)) if m else 0
    with open(dumpfile, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0] if len(data) >= 4 else 0
    if magic != 0xDEFEC8ED:
        sys.stderr.write(f"savecore: bad magic number {magic:x}\n")
        return 0
    host = data[56 + 257:56 + 514].split(b"\0", 1)[0].decode()
    if host == "nospace":
        sys.stderr.write(f"savecore: not enough space in {savedir} (1 MB avail, 4096 MB needed)\n")
        return 1
    with open(os.path.join(savedir, f"unix.{n}"), "wb") as f:
        f.write(b"\x7fELF fake kernel symbols\n")
    with open(os.path.join(savedir, f"vmcore.{n}"), "wb") as f:
        f.write(data)
    print(f"Constructing namelist {savedir}/unix.{n}")
    print(f"Constructing corefile {savedir}/vmcore.{n}")
    return 0


sys.exit(main(sys.argv[1:]))
