import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { AnalysisMetrics } from '../../actors/analysisMetrics.js';
import type { AnalyzerObserverEvents } from '../../actors/AnalyzerSupervisor.js';

describe('analysis metrics', () => {
  it('counts detections per class, latency, fps, drops and restarts from an observer', async () => {
    const registry = new Registry();
    const metrics = new AnalysisMetrics(registry, 'gst_iotedge');
    const observer = new EventEmitter<AnalyzerObserverEvents>();
    const stop = metrics.observe(observer);
    observer.emit('analyzed', { analyzer: 'people', latencyMs: 16, classes: { person: 2, car: 1 } });
    observer.emit('analyzed', { analyzer: 'people', latencyMs: 24, classes: { person: 1 } });
    observer.emit('fps', { analyzer: 'people', fps: 9.8 });
    observer.emit('framesDropped', { analyzer: 'people', frames: 3 });
    observer.emit('eventsDropped', { analyzer: 'people', events: 1 });
    observer.emit('restart', { analyzer: 'people', reason: 'hung' });
    stop();
    observer.emit('analyzed', { analyzer: 'people', latencyMs: 16, classes: { person: 5 } });
    const text = await registry.metrics();
    assert.match(text, /gst_iotedge_analysis_detections_total\{analyzer="people",class="person"\} 3\n/);
    assert.match(text, /gst_iotedge_analysis_detections_total\{analyzer="people",class="car"\} 1\n/);
    assert.match(text, /gst_iotedge_analysis_frames_total\{analyzer="people"\} 2\n/);
    assert.match(text, /gst_iotedge_analysis_inference_seconds_bucket\{le="0.02",analyzer="people"\} 1\n/);
    assert.match(text, /gst_iotedge_analysis_fps\{analyzer="people"\} 9.8\n/);
    assert.match(text, /gst_iotedge_analysis_frames_dropped_total\{analyzer="people"\} 3\n/);
    assert.match(text, /gst_iotedge_analysis_events_dropped_total\{analyzer="people"\} 1\n/);
    assert.match(text, /gst_iotedge_analysis_restarts_total\{analyzer="people",reason="hung"\} 1\n/);
    // Same check the module's own metrics pass, where promtool is installed (a test package).
    let promtool = true;
    try {
      execFileSync('promtool', ['--version'], { stdio: 'ignore' });
    } catch {
      promtool = false;
    }
    if (promtool) execFileSync('promtool', ['check', 'metrics'], { input: text });
  });
});
