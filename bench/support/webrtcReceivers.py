#!/usr/bin/python3
"""Light WebRTC viewers for benchmarks: N webrtcbin receivers in one process, none of them decoding.

Each receiver is a pipeline with one webrtcbin; the video it receives goes
`rtph264depay ! h264parse ! identity ! fakesink sync=false`, and its frames are read from identity's `stats`
property when asked (no Python code runs per buffer). Signalling is the module's seed protocol, relayed by the Node
driver (bench/support/WebRtcReceivers.ts) over stdio, one JSON object a line:

  in:  {"op": "open", "id": "r1"}                     a new receiver, waiting for its offer
       {"op": "signal", "id": "r1", "msg": {...}}     a message from the module: {"sdp": offer} or {"ice": {...}}
       {"op": "close", "id": "r1"}
       {"op": "counts"}                               frames so far, per receiver
  out: {"op": "signal", "id": "r1", "msg": {...}}     to the module: {"sdp": answer} or {"ice": {...}}
       {"op": "state", "id": "r1", "state": "connected"}   webrtcbin's connection-state, on change
       {"op": "counts", "counts": {"r1": 123, ...}, "at": <monotonic s>}
       {"op": "error", "id": "r1", "reason": "..."}
"""
import time

import gi

gi.require_version('Gst', '1.0')
gi.require_version('GstWebRTC', '1.0')
gi.require_version('GstSdp', '1.0')
from gi.repository import Gst, GstSdp, GstWebRTC  # noqa: E402

from gstlines import send, serve  # noqa: E402

Gst.init(None)


class Receiver:
    def __init__(self, rid):
        self.id = rid
        self.pipeline = Gst.Pipeline.new('rx-' + rid)
        self.webrtc = Gst.ElementFactory.make('webrtcbin', 'webrtcbin')
        self.webrtc.set_property('bundle-policy', GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
        self.pipeline.add(self.webrtc)
        self.identity = None
        self.state = None
        self.webrtc.connect('on-ice-candidate', self.on_ice_candidate)
        self.webrtc.connect('pad-added', self.on_pad_added)
        self.webrtc.connect('notify::connection-state', self.on_connection_state)
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect('message::error', self.on_error)
        self.pipeline.set_state(Gst.State.PLAYING)

    def on_ice_candidate(self, _element, mline, candidate):
        send({'op': 'signal', 'id': self.id, 'msg': {'ice': {'candidate': candidate, 'sdpMLineIndex': mline}}})

    def on_connection_state(self, element, _pspec):
        state = element.get_property('connection-state').value_nick
        if state != self.state:
            self.state = state
            send({'op': 'state', 'id': self.id, 'state': state})

    def on_error(self, _bus, message):
        error, _debug = message.parse_error()
        send({'op': 'error', 'id': self.id, 'reason': f'{message.src.get_name()}: {error.message}'})

    def on_pad_added(self, _element, pad):
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        caps = pad.get_current_caps() or pad.query_caps(None)
        if not caps.to_string().startswith('application/x-rtp') or 'H264' not in caps.to_string():
            sink = Gst.ElementFactory.make('fakesink', None)
            self.pipeline.add(sink)
            sink.sync_state_with_parent()
            pad.link(sink.get_static_pad('sink'))
            return
        chain = Gst.parse_bin_from_description('rtph264depay ! h264parse ! identity name=count ! fakesink sync=false', True)
        self.pipeline.add(chain)
        chain.sync_state_with_parent()
        pad.link(chain.get_static_pad('sink'))
        self.identity = chain.get_by_name('count')

    def handle(self, msg):
        if 'sdp' in msg:
            sdp = msg['sdp']
            if sdp.get('type') != 'offer':
                return
            result, parsed = GstSdp.SDPMessage.new_from_text(sdp['sdp'])
            if result != GstSdp.SDPResult.OK:
                send({'op': 'error', 'id': self.id, 'reason': 'offer does not parse'})
                return
            offer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.OFFER, parsed)
            self.webrtc.emit('set-remote-description', offer, Gst.Promise.new_with_change_func(self.on_offer_set, None))
        elif 'ice' in msg:
            ice = msg['ice']
            if ice.get('candidate'):
                self.webrtc.emit('add-ice-candidate', ice.get('sdpMLineIndex', 0), ice['candidate'])

    def on_offer_set(self, _promise, _data):
        self.webrtc.emit('create-answer', None, Gst.Promise.new_with_change_func(self.on_answer, None))

    def on_answer(self, promise, _data):
        reply = promise.get_reply()
        answer = reply.get_value('answer') if reply else None
        if answer is None:
            send({'op': 'error', 'id': self.id, 'reason': 'create-answer gave no answer'})
            return
        self.webrtc.emit('set-local-description', answer, Gst.Promise.new())
        send({'op': 'signal', 'id': self.id, 'msg': {'sdp': {'type': 'answer', 'sdp': answer.sdp.as_text()}}})

    def frames(self):
        if self.identity is None:
            return 0
        return self.identity.get_property('stats').get_value('num-buffers')

    def close(self):
        self.pipeline.get_bus().remove_signal_watch()
        self.pipeline.set_state(Gst.State.NULL)


receivers = {}


def on_command(cmd):
    op = cmd.get('op')
    rid = cmd.get('id')
    try:
        if op == 'open':
            receivers[rid] = Receiver(rid)
        elif op == 'signal' and rid in receivers:
            receivers[rid].handle(cmd['msg'])
        elif op == 'close' and rid in receivers:
            receivers.pop(rid).close()
        elif op == 'counts':
            send({'op': 'counts', 'counts': {k: r.frames() for k, r in receivers.items()}, 'at': time.monotonic()})
    except Exception as error:  # one receiver's trouble is reported, never the end of the others
        send({'op': 'error', 'id': rid, 'reason': f'{op}: {error}'})


serve(on_command)
for receiver in receivers.values():
    receiver.close()
