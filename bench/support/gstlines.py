"""What the benchmarks' python3-gi helpers share: one JSON object a line on stdout (written from any thread), and a
GLib main loop reading commands from stdin, one JSON object a line, until stdin closes or a SIGINT/SIGTERM.
Imported by webrtcReceivers.py and webrtcBaselineSender.py (their folder is on sys.path when run as scripts).
"""
import json
import os
import signal
import sys
import threading

from gi.repository import GLib

_out_lock = threading.Lock()


def send(obj):
    """One line on stdout; signals come from GStreamer's threads, so writes are serialised."""
    line = json.dumps(obj, separators=(',', ':')) + '\n'
    with _out_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def serve(on_command):
    """Says `ready`, then runs the main loop, calling on_command(dict) for each line read from stdin."""
    pending = b''
    loop = GLib.MainLoop()

    def on_stdin(fd, _condition):
        nonlocal pending
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            loop.quit()
            return False
        pending += chunk
        *lines, pending = pending.split(b'\n')
        for line in lines:
            if line.strip():
                on_command(json.loads(line))
        return True

    GLib.io_add_watch(0, GLib.PRIORITY_DEFAULT, GLib.IOCondition.IN | GLib.IOCondition.HUP, on_stdin)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    send({'op': 'ready'})
    loop.run()
