#!/usr/bin/python3
"""The plain-GStreamer baseline of the WebRTC fan-out benchmark: one python3-gi process doing what the module's
shared mode does for N viewers, with nothing of the module around it.

One pipeline encodes once, payloads once and tees the RTP to every viewer's webrtcbin, laid out as the module's
fan-out (media/WebRtcFanout.ts): `tee ! valve ! webrtcbin`, no queue or thread per viewer, the valve closed until
the viewer's connection is up (then a key frame is asked for). Signalling is the seed protocol the module speaks
on `/ws`, relayed by the Node driver (bench/support/WebRtcBaseline.ts) over stdio, one JSON object a line:

  argv[1]: the encoder's launch line (ends in H.264, as the benchmark's twin)
  in:  {"op": "open", "id": "s1"}                     a new viewer: its offer comes out
       {"op": "signal", "id": "s1", "msg": {...}}     from the viewer: {"sdp": answer} or {"ice": {...}}
       {"op": "close", "id": "s1"}
  out: {"op": "ready"}
       {"op": "signal", "id": "s1", "msg": {...}}     to the viewer: {"sdp": offer} or {"ice": {...}}
       {"op": "error", "id": "s1", "reason": "..."}
"""
import sys

import gi

gi.require_version('Gst', '1.0')
gi.require_version('GstWebRTC', '1.0')
gi.require_version('GstSdp', '1.0')
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

from gstlines import send, serve  # noqa: E402

Gst.init(None)


# As media/webrtcLaunch.ts's payloader, after the encoder instead of an appsrc.
pipeline = Gst.parse_launch(
    sys.argv[1] + ' ! h264parse config-interval=-1 ! rtph264pay config-interval=-1 aggregate-mode=zero-latency ! '
    'application/x-rtp,media=video,encoding-name=H264,payload=96,clock-rate=90000,packetization-mode=(string)1 ! '
    'tee name=t allow-not-linked=true')
tee = pipeline.get_by_name('t')


class Viewer:
    def __init__(self, vid):
        self.id = vid
        self.valve = Gst.ElementFactory.make('valve', None)
        self.valve.set_property('drop-mode', 1)  # forward-sticky-events: the caps reach webrtcbin
        self.valve.set_property('drop', True)
        self.webrtc = Gst.ElementFactory.make('webrtcbin', None)
        self.webrtc.set_property('bundle-policy', GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
        self.webrtc.connect('on-negotiation-needed', self.on_negotiation_needed)
        self.webrtc.connect('on-ice-candidate', self.on_ice_candidate)
        self.webrtc.connect('notify::connection-state', self.on_connection_state)
        pipeline.add(self.valve)
        pipeline.add(self.webrtc)
        self.valve.link(self.webrtc)
        self.valve.sync_state_with_parent()
        self.webrtc.sync_state_with_parent()
        self.tee_pad = tee.request_pad_simple('src_%u')
        self.tee_pad.link(self.valve.get_static_pad('sink'))

    def on_negotiation_needed(self, _element):
        self.webrtc.emit('create-offer', None, Gst.Promise.new_with_change_func(self.on_offer, None))

    def on_offer(self, promise, _data):
        reply = promise.get_reply()
        offer = reply.get_value('offer') if reply else None
        if offer is None:
            send({'op': 'error', 'id': self.id, 'reason': 'create-offer gave no offer'})
            return
        self.webrtc.emit('set-local-description', offer, Gst.Promise.new())
        send({'op': 'signal', 'id': self.id, 'msg': {'sdp': {'type': 'offer', 'sdp': offer.sdp.as_text()}}})

    def on_ice_candidate(self, _element, mline, candidate):
        send({'op': 'signal', 'id': self.id, 'msg': {'ice': {'candidate': candidate, 'sdpMLineIndex': mline}}})

    def on_connection_state(self, element, _pspec):
        if element.get_property('connection-state') == GstWebRTC.WebRTCPeerConnectionState.CONNECTED:
            GLib.idle_add(self.open)

    def open(self):
        self.valve.set_property('drop', False)
        force = Gst.Structure.new_from_string('GstForceKeyUnit, all-headers=(boolean)true, count=(uint)0')
        self.valve.get_static_pad('sink').push_event(Gst.Event.new_custom(Gst.EventType.CUSTOM_UPSTREAM, force))
        return False

    def handle(self, msg):
        if 'sdp' in msg:
            sdp = msg['sdp']
            if sdp.get('type') != 'answer':
                return
            result, parsed = GstSdp.SDPMessage.new_from_text(sdp['sdp'])
            if result != GstSdp.SDPResult.OK:
                send({'op': 'error', 'id': self.id, 'reason': 'answer does not parse'})
                return
            answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, parsed)
            self.webrtc.emit('set-remote-description', answer, Gst.Promise.new())
        elif 'ice' in msg:
            ice = msg['ice']
            if ice.get('candidate'):
                self.webrtc.emit('add-ice-candidate', ice.get('sdpMLineIndex', 0), ice['candidate'])

    def close(self):
        # Off the tee first, as the module does (a branch going to NULL would answer the tee FLUSHING).
        self.tee_pad.unlink(self.valve.get_static_pad('sink'))
        tee.release_request_pad(self.tee_pad)
        self.webrtc.set_locked_state(True)
        self.webrtc.set_state(Gst.State.NULL)
        self.valve.set_state(Gst.State.NULL)
        pipeline.remove(self.webrtc)
        pipeline.remove(self.valve)


viewers = {}


def on_command(cmd):
    op = cmd.get('op')
    vid = cmd.get('id')
    try:
        if op == 'open':
            viewers[vid] = Viewer(vid)
        elif op == 'signal' and vid in viewers:
            viewers[vid].handle(cmd['msg'])
        elif op == 'close' and vid in viewers:
            viewers.pop(vid).close()
    except Exception as error:  # one viewer's trouble is reported, never the end of the others
        send({'op': 'error', 'id': vid, 'reason': f'{op}: {error}'})


def on_error(_bus, message):
    error, _debug = message.parse_error()
    send({'op': 'error', 'id': None, 'reason': f'{message.src.get_name()}: {error.message}'})


bus = pipeline.get_bus()
bus.add_signal_watch()
bus.connect('message::error', on_error)
pipeline.set_state(Gst.State.PLAYING)
serve(on_command)
pipeline.set_state(Gst.State.NULL)
