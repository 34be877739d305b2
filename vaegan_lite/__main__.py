import signal
import sys

from .cli import main

code = main()
if code in (130, 143):
    # Stopped by Ctrl-C or SIGTERM, and said so in one line: a second Ctrl-C (a terminal sends
    # each to the whole process group) must not add a traceback from the interpreter's shutdown.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
sys.exit(code)
