#!/usr/bin/python3
"""An RTSP viewer that finds the flashes and beeps of bench/support/avSyncCamera.py: it decodes both streams (one
viewer, 640x360), `videoanalyse` gives each frame's average luma and `level` the audio's RMS every 2 ms, and each
change between dark and bright, or silence and tone, is printed with its running time (after rtspsrc's lip-sync,
as a player would present it), one JSON object a line: {"kind": "video"|"audio", "edge": "up"|"down", "t": <ns>}.
Usage: avSyncViewer.py <rtsp url>   (runs until SIGINT or stdin closes)"""
import json
import os
import signal
import sys

import gi

gi.require_version('Gst', '1.0')
from gi.repository import GLib, Gst  # noqa: E402

Gst.init(None)
# playbin links rtspsrc's two pads itself: gst_parse's delayed links (`rtspsrc name=s s. ! ...`) raced when both
# pads came at once over TCP and left some sessions with no stream linked (no edges at all in that run).
pipeline = Gst.ElementFactory.make('playbin', None)
pipeline.set_property('uri', sys.argv[1])
pipeline.set_property('video-sink', Gst.parse_bin_from_description('videoconvert ! videoanalyse ! fakesink sync=false', True))
pipeline.set_property(
    'audio-sink', Gst.parse_bin_from_description('audioconvert ! level interval=2000000 post-messages=true ! fakesink sync=false', True)
)


def on_source_setup(_playbin, source):
    source.set_property('protocols', 'tcp')
    source.set_property('latency', 200)


pipeline.connect('source-setup', on_source_setup)
state = {'video': None, 'audio': None}


def edge(kind, high, running_time):
    if state[kind] is not None and state[kind] != high:
        print(json.dumps({'kind': kind, 'edge': 'up' if high else 'down', 't': running_time}), flush=True)
    state[kind] = high


def on_element(_bus, message):
    s = message.get_structure()
    if s is None:
        return
    if s.get_name() == 'GstVideoAnalyse':
        edge('video', s.get_value('luma-average') > 0.5, s.get_value('running-time'))
    elif s.get_name() == 'level':
        rms = s.get_value('rms')
        edge('audio', max(rms) > -30, s.get_value('running-time'))


def on_error(_bus, message):
    error, _ = message.parse_error()
    print(json.dumps({'error': f'{message.src.get_name()}: {error.message}'}), flush=True)
    loop.quit()


loop = GLib.MainLoop()
bus = pipeline.get_bus()
bus.add_signal_watch()
bus.connect('message::element', on_element)
bus.connect('message::error', on_error)
GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
GLib.io_add_watch(0, GLib.PRIORITY_DEFAULT, GLib.IOCondition.HUP, lambda *_: loop.quit())
pipeline.set_state(Gst.State.PLAYING)
loop.run()
pipeline.set_state(Gst.State.NULL)
os._exit(0)
