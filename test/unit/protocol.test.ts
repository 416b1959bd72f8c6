import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isEngineCommand, isEngineEvent } from '../../ipc/protocol.js';

const SEGMENT = { recorder: 'video', stream: 'video', path: '/s/recordings/video-20240501T120000.000Z.mp4', startMs: 1714564800000, durationMs: 4000, size: 1000, audio: false };

describe('IPC protocol guards', () => {
  it('accept every well-formed engine event', () => {
    const good: unknown[] = [
      { type: 'ready', pid: 1, gstVersion: 'GStreamer 1.22.0' },
      { type: 'reply', id: 3, ok: true },
      { type: 'reply', id: 3, ok: false, error: 'no element "x"' },
      { type: 'state', pipeline: 'main', run: 1, state: 'playing' },
      { type: 'error', pipeline: 'main', run: 1, message: 'm', source: 'src', debug: null },
      { type: 'stopped', pipeline: 'main', run: 1, eos: true },
      { type: 'rtsp', port: 8554, mounts: ['/player'], error: null },
      { type: 'stats', stats: { streams: { video: { buffers: 1, bytes: 2, caps: null } }, rtsp: { '/player': { viewers: 0, bytesSent: 0 } }, webrtcPeers: 0, memory: { rss: 1, heapUsed: 2, external: 3 } } },
      { type: 'webrtc-signal', peer: 'p', signal: { ice: { candidate: 'candidate:1', sdpMLineIndex: 0 } } },
      { type: 'webrtc-state', peer: 'p', state: 'connected', reason: null },
      { type: 'pong' },
      { type: 'log', level: 'warn', msg: 'x' },
      { type: 'analysis-tap', analyzer: 'people', port: 40000, decoder: 'avdec_h264', error: null },
      { type: 'analysis-tap', analyzer: 'people', port: null, decoder: null, error: 'tap pipeline did not start' },
      { type: 'analysis-decoder', choice: 'nvcodec', raised: [], lowered: [], missing: ['nvcodec'] },
      { type: 'record-segment-opened', recorder: 'video', stream: 'video', path: '/s/recordings/video-20240501T120000.000Z.mp4.part', startMs: 1714564800000 },
      { type: 'record-segment', segment: SEGMENT },
      { type: 'record-state', recorder: 'video', state: 'recording', error: null },
      { type: 'record-state', recorder: 'video', state: 'failed', error: 'stream video carries video/x-raw' },
    ];
    for (const event of good) assert.equal(isEngineEvent(event), true, JSON.stringify(event));
  });

  it('refuse malformed ones instead of letting subscribers throw on them', () => {
    const bad: unknown[] = [
      null,
      42,
      'ready',
      [],
      {},
      { type: 'nope' },
      { type: 'toString' },
      { type: '__proto__' },
      { type: 'ready', pid: '1', gstVersion: 'x' },
      { type: 'state', pipeline: 'main', run: 1, state: 'dancing' },
      { type: 'state', pipeline: 'main', state: 'playing' },
      { type: 'stats', stats: { streams: { video: { buffers: 'many' } }, rtsp: {}, webrtcPeers: 0 } },
      { type: 'stats', stats: null },
      { type: 'rtsp', port: 1, mounts: [1], error: null },
      { type: 'webrtc-signal', peer: 'p', signal: { sdp: 'v=0' } },
      { type: 'log', level: 'fatal', msg: 'x' },
      { type: 'stats', stats: { streams: {}, rtsp: {}, webrtcPeers: Number.NaN } },
      { type: 'analysis-tap', analyzer: 'people', port: '40000', decoder: null, error: null },
      { type: 'analysis-decoder', choice: 'cuda', raised: [], lowered: [], missing: [] },
      { type: 'record-segment', segment: { ...SEGMENT, size: '1000' } },
      { type: 'record-segment', segment: { ...SEGMENT, audio: undefined } },
      { type: 'record-segment', path: SEGMENT.path },
      { type: 'record-state', recorder: 'video', state: 'paused', error: null },
      { type: 'record-state', recorder: 'video', state: 'failed' },
      { type: 'record-segment-opened', recorder: 'video', stream: 'video', path: null, startMs: 0 },
    ];
    for (const event of bad) assert.equal(isEngineEvent(event), false, JSON.stringify(event));
  });

  it('check commands the same way on the engine side', () => {
    assert.equal(isEngineCommand({ type: 'start', pipeline: 'main', run: 1, launch: 'videotestsrc ! fakesink' }), true);
    assert.equal(isEngineCommand({ type: 'ping' }), true);
    assert.equal(isEngineCommand({ type: 'start', pipeline: 'main', run: 1 }), false);
    assert.equal(isEngineCommand({ type: 'webrtc-open', spec: { peer: 'p', mode: 'mesh', launch: null, stunServer: null, turnServers: [], offer: null } }), false);
    const tap = { analyzer: 'people', source: { kind: 'element', element: 'people' }, fps: 5, inputSize: 320, keyFramesOnly: false };
    assert.equal(isEngineCommand({ type: 'analysis', taps: [tap, { ...tap, analyzer: 'lobby', source: { kind: 'stream', stream: 'video' } }], decoder: 'auto' }), true);
    assert.equal(isEngineCommand({ type: 'analysis', taps: [], decoder: 'v4l2' }), true);
    assert.equal(isEngineCommand({ type: 'analysis', taps: [{ ...tap, source: { kind: 'element', stream: 'video' } }], decoder: 'auto' }), false);
    assert.equal(isEngineCommand({ type: 'analysis', taps: [{ ...tap, fps: '5' }], decoder: 'auto' }), false);
    const recorder = { name: 'video', stream: 'video', audio: 'audio', dir: '/s/recordings', segmentMs: 60_000, fragmentMs: 1_000 };
    assert.equal(isEngineCommand({ type: 'record-configure', recorders: [recorder, { ...recorder, name: 'cam2', stream: 'cam2', audio: null }] }), true);
    assert.equal(isEngineCommand({ type: 'record-configure', recorders: [] }), true);
    assert.equal(isEngineCommand({ type: 'record-configure', recorders: [{ ...recorder, dir: undefined }] }), false);
    assert.equal(isEngineCommand({ type: 'record-configure', recorders: [{ ...recorder, segmentMs: '60000' }] }), false);
    assert.equal(isEngineCommand({ type: 'record-configure', recorders: recorder }), false);
  });
});
