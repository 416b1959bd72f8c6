#!/usr/bin/python3
"""Baseline for the RTSP benchmarks (bench/rtsp.ts, bench/tls.ts, bench/cameras.ts): a plain gst-rtsp-server serving
shared launch lines, nothing else; with --tls, a second server serves the same mount points as RTSPS.
Usage: rtspBaselineServer.py <port> <launch> [--tls <tls-port> <pem>] [<path> <launch>]...
(<launch> at /player, then one line per extra mount; <pem> holds certificate and key; prints "ready" once listening)
Env BASELINE_PIPELINES: a JSON object of named pipelines run beside the server (each to its own pipeline, as the
module runs them); a mount's `proxysrc name=<x>src` is fed from the `proxysink name=<x>` of those pipelines."""
import json
import os
import signal
import sys
import gi
gi.require_version('Gst', '1.0')
gi.require_version('GstRtspServer', '1.0')
gi.require_version('Gio', '2.0')
from gi.repository import Gio, GLib, Gst, GstRtspServer

Gst.init(None)
args = sys.argv[3:]
tls_args = None
if args[:1] == ['--tls']:
    tls_args, args = args[1:3], args[3:]
pipelines = [Gst.parse_launch(line) for line in json.loads(os.environ.get('BASELINE_PIPELINES', '{}')).values()]
for pipeline in pipelines:
    pipeline.set_state(Gst.State.PLAYING)


def feed_proxies(_factory, media):
    """proxysrc name=<x>src -> the proxysink named <x> in one of the pipelines."""
    iterator = media.get_element().iterate_recurse()
    while True:
        result, element = iterator.next()
        if result != Gst.IteratorResult.OK:
            break
        name = element.get_name()
        if element.get_factory().get_name() == 'proxysrc' and name.endswith('src'):
            for pipeline in pipelines:
                sink = pipeline.get_by_name(name[:-3])
                if sink is not None:
                    element.set_property('proxysink', sink)


server = GstRtspServer.RTSPServer()
server.set_address('127.0.0.1')
server.set_service(sys.argv[1])
mounts = [('/player', sys.argv[2])] + [(args[i], args[i + 1]) for i in range(0, len(args) - 1, 2)]
factories = []
for path, launch in mounts:
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(True)
    if pipelines:
        factory.connect('media-configure', feed_proxies)
    server.get_mount_points().add_factory(path if path.startswith('/') else '/' + path, factory)
    factories.append(factory)
server.attach(None)
if tls_args:
    tls = GstRtspServer.RTSPServer()
    tls.set_address('127.0.0.1')
    tls.set_service(tls_args[0])
    tls.set_mount_points(server.get_mount_points())
    auth = GstRtspServer.RTSPAuth()
    auth.set_tls_certificate(Gio.TlsCertificate.new_from_file(tls_args[1]))
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, 'anonymous')
    auth.set_default_token(token)
    tls.set_auth(auth)
    # With an auth set, a factory needs permissions for the role; the plain server has no auth and ignores them.
    for factory in factories:
        permissions = GstRtspServer.RTSPPermissions.new()
        permissions.add_permission_for_role('anonymous', GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
        permissions.add_permission_for_role('anonymous', GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
        factory.set_permissions(permissions)
    tls.attach(None)
print('ready', flush=True)
signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
GLib.MainLoop().run()
