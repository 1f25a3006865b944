#!/usr/bin/env python3
"""setup.py: the legacy entry point, running bin/vifibnet-setup.

Same arguments as the 2012 setup.py (plus --email and --token); exec keeps
the process id, so signals, standard input and exit codes are the Node
program's own.
"""
import os
import shutil
import sys

here = os.path.dirname(os.path.realpath(__file__))
program = os.path.join(here, os.pardir, "bin", "vifibnet-setup")
node = shutil.which("node")
if node is None:
    sys.exit("setup.py: error: Node.js (node) is not installed or not on PATH")
os.environ["VIFIBNET_PROG"] = os.path.basename(sys.argv[0]) or "setup.py"
os.execv(node, [node, program] + sys.argv[1:])
