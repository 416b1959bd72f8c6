#!/usr/bin/python3
"""Baseline for bench/rtsp.ts and bench/tls.ts: a plain gst-rtsp-server serving one shared launch line, nothing else;
with a TLS port and a PEM file (certificate and key), a second server serves the same mount points as RTSPS.
Usage: rtspBaselineServer.py <port> <launch> [<tls-port> <pem>]   (prints "ready" once listening)"""
import signal
import sys
import gi
gi.require_version('Gst', '1.0')
gi.require_version('GstRtspServer', '1.0')
gi.require_version('Gio', '2.0')
from gi.repository import Gio, GLib, Gst, GstRtspServer

Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address('127.0.0.1')
server.set_service(sys.argv[1])
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(sys.argv[2])
factory.set_shared(True)
server.get_mount_points().add_factory('/player', factory)
server.attach(None)
if len(sys.argv) > 4:
    tls = GstRtspServer.RTSPServer()
    tls.set_address('127.0.0.1')
    tls.set_service(sys.argv[3])
    tls.set_mount_points(server.get_mount_points())
    auth = GstRtspServer.RTSPAuth()
    auth.set_tls_certificate(Gio.TlsCertificate.new_from_file(sys.argv[4]))
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, 'anonymous')
    auth.set_default_token(token)
    tls.set_auth(auth)
    # With an auth set, a factory needs permissions for the role; the plain server has no auth and ignores them.
    permissions = GstRtspServer.RTSPPermissions.new()
    permissions.add_permission_for_role('anonymous', GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
    permissions.add_permission_for_role('anonymous', GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
    factory.set_permissions(permissions)
    tls.attach(None)
print('ready', flush=True)
signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
GLib.MainLoop().run()
