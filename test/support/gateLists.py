#!/usr/bin/python3
"""Counts what crosses a gate element (iotedgegate or valve): buffers and buffer lists on its sink and src pads and
the caps that reached its downstream sink, for test/integration/gateElement.test.ts. Prints one JSON object.
   gateLists.py GATE_LAUNCH   e.g. 'iotedgegate drop=false' or 'valve drop-mode=forward-sticky-events'"""
import json
import sys

import gi

gi.require_version('Gst', '1.0')
from gi.repository import Gst  # noqa: E402

Gst.init(None)
# rtph264pay pushes a fragmented frame's packets as one buffer list (small mtu: every frame is fragmented).
pipeline = Gst.parse_launch(
    'videotestsrc num-buffers=30 pattern=snow ! video/x-raw,width=320,height=240,framerate=30/1 ! '
    'x264enc tune=zerolatency speed-preset=ultrafast ! h264parse ! rtph264pay mtu=400 config-interval=-1 ! '
    f'{sys.argv[1]} name=gate ! fakesink name=sink')
counts = {'sink': {'buffers': 0, 'lists': 0}, 'src': {'buffers': 0, 'lists': 0}}


def counter(side):
    def probe(pad, info):
        counts[side]['lists' if info.type & Gst.PadProbeType.BUFFER_LIST else 'buffers'] += 1
        return Gst.PadProbeReturn.OK
    return probe


gate = pipeline.get_by_name('gate')
for side in ('sink', 'src'):
    gate.get_static_pad(side).add_probe(Gst.PadProbeType.BUFFER | Gst.PadProbeType.BUFFER_LIST, counter(side))
pipeline.set_state(Gst.State.PLAYING)
message = pipeline.get_bus().timed_pop_filtered(60 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
caps = pipeline.get_by_name('sink').get_static_pad('sink').get_current_caps()
pipeline.set_state(Gst.State.NULL)
counts['eos'] = message is not None and message.type == Gst.MessageType.EOS
counts['caps'] = caps.to_string() if caps else None
print(json.dumps(counts))
