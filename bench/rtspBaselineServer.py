#!/usr/bin/python3
"""Baseline for bench/rtspFanout: a plain gst-rtsp-server serving one shared launch line, nothing else.
Usage: rtspBaselineServer.py <port> <launch>   (prints "ready" once listening)"""
import signal
import sys
import gi
gi.require_version('Gst', '1.0')
gi.require_version('GstRtspServer', '1.0')
from gi.repository import GLib, Gst, GstRtspServer

Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address('127.0.0.1')
server.set_service(sys.argv[1])
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(sys.argv[2])
factory.set_shared(True)
server.get_mount_points().add_factory('/player', factory)
server.attach(None)
print('ready', flush=True)
signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
GLib.MainLoop().run()
