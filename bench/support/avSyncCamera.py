#!/usr/bin/python3
"""A camera stand-in with a known A/V sync, for bench/timestamps.ts: an RTSP server (127.0.0.1) whose /camera
serves H.264 video and AAC audio that change together, twice a second: the picture goes from black to white and
the sound from silence to a 1 kHz tone at every whole second of stream time, and back at every half. Both are
driven by one square-wave control source each (GstController LFO, same frequency and phase) on `videobalance` and
`volume`, so no Python runs per buffer and the edges of both carry the same timestamps.
Usage: avSyncCamera.py <port> [<width>x<height>]   (prints "ready" once listening)"""
import signal
import sys

import gi

gi.require_version('Gst', '1.0')
gi.require_version('GstController', '1.0')
gi.require_version('GstRtspServer', '1.0')
from gi.repository import GLib, Gst, GstController, GstRtspServer  # noqa: E402

Gst.init(None)
port = sys.argv[1]
width, height = (sys.argv[2] if len(sys.argv) > 2 else '640x360').split('x')
LAUNCH = (
    f'( videotestsrc is-live=true pattern=white ! video/x-raw,width={width},height={height},framerate=30/1 ! '
    'videobalance name=flash ! videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=1000 ! '
    'video/x-h264,profile=constrained-baseline ! rtph264pay name=pay0 pt=96 config-interval=-1 '
    'audiotestsrc is-live=true wave=sine freq=1000 samplesperbuffer=480 ! audio/x-raw,rate=48000,channels=1 ! '
    'volume name=beep ! audioconvert ! avenc_aac ! rtpmp4gpay name=pay1 pt=97 )'
)


def square(element, prop, low, high):
    """`prop` of `element` is `high` during the first half of every second of stream time, `low` in the second."""
    # A direct binding maps control values 0..1 onto the property's range (an LFO's offset cannot be negative).
    spec = element.find_property(prop)
    scale = lambda value: (value - spec.minimum) / (spec.maximum - spec.minimum)
    source = GstController.LFOControlSource()
    source.set_property('waveform', GstController.LFOWaveform.SQUARE)
    source.set_property('frequency', 1.0)
    source.set_property('offset', (scale(high) + scale(low)) / 2)
    source.set_property('amplitude', (scale(high) - scale(low)) / 2)
    element.add_control_binding(GstController.DirectControlBinding.new(element, prop, source))


def on_media_configure(_factory, media):
    pipeline = media.get_element()
    square(pipeline.get_by_name('flash'), 'brightness', -1.0, 0.0)
    square(pipeline.get_by_name('beep'), 'volume', 0.0, 0.5)


server = GstRtspServer.RTSPServer()
server.set_address('127.0.0.1')
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(LAUNCH)
factory.set_shared(True)
factory.connect('media-configure', on_media_configure)
server.get_mount_points().add_factory('/camera', factory)
server.attach(None)
print('ready', flush=True)
signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
GLib.MainLoop().run()
