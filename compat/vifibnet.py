#!/usr/bin/env python3
"""vifibnet.py: the legacy entry point, running bin/vifibnet.

Same arguments as the 2012 vifibnet.py; exec keeps the process id, so
signals and exit codes are the Node program's own.
"""
import os
import shutil
import sys

here = os.path.dirname(os.path.realpath(__file__))
program = os.path.join(here, os.pardir, "bin", "vifibnet")
node = shutil.which("node")
if node is None:
    sys.exit("vifibnet.py: error: Node.js (node) is not installed or not on PATH")
os.environ["VIFIBNET_PROG"] = os.path.basename(sys.argv[0]) or "vifibnet.py"
os.execv(node, [node, program] + sys.argv[1:])
