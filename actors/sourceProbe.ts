import { connect, type Socket } from 'node:net';
import { fromCallback, type EventObject } from 'xstate';
import type { SourceProbeEvent, SourceProbeInput } from '../machines/pipeline.js';

/** How often a source that is down is tried: a TCP connect every half second costs a camera nothing. */
export const PROBE_INTERVAL_MS = 500;
/** A connect that takes longer than this counts as not answering. */
const CONNECT_TIMEOUT_MS = 1_000;

/** Default TCP ports of the schemes a camera source uses. */
const PORTS: Record<string, number> = { 'rtsp:': 554, 'rtspt:': 554, 'rtsps:': 322, 'http:': 80, 'https:': 443, 'rtmp:': 1935, 'rtmps:': 443, 'tcp:': 0 };

/**
 * Where to probe a source URI: host and TCP port, or null when the scheme is not TCP (udp://, srt://, a file), so
 * only a restart can tell.
 *
 * @example
 * probeTarget('rtsp://user:pw@10.0.0.5/axis-media/media.amp') // { host: '10.0.0.5', port: 554 }
 */
export function probeTarget(uri: string): { host: string; port: number } | null {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return null;
  }
  const fallback = PORTS[url.protocol];
  if (fallback === undefined || !url.hostname) return null;
  const port = url.port ? Number(url.port) : fallback;
  if (!port) return null;
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port };
}

/**
 * The pipeline machine's `probe`: connects to the source's host and port every {@link PROBE_INTERVAL_MS} and says
 * SOURCE_REACHABLE at the first connect that succeeds (then the pipeline starts at once), or SOURCE_UNPROBEABLE
 * for a source that is not reached over TCP.
 */
export function sourceProbeLogic(intervalMs = PROBE_INTERVAL_MS) {
  return fromCallback<EventObject, SourceProbeInput>(({ input, sendBack }) => {
    const target = probeTarget(input.uri);
    if (!target) {
      sendBack({ type: 'SOURCE_UNPROBEABLE' } satisfies SourceProbeEvent);
      return () => undefined;
    }
    let stopped = false;
    let socket: Socket | null = null;
    let timer: NodeJS.Timeout | null = null;
    const attempt = () => {
      if (stopped) return;
      const tried = connect({ host: target.host, port: target.port, timeout: CONNECT_TIMEOUT_MS });
      socket = tried;
      const retry = () => {
        tried.destroy();
        if (!stopped) timer = setTimeout(attempt, intervalMs);
      };
      tried.once('connect', () => {
        tried.destroy();
        if (!stopped) sendBack({ type: 'SOURCE_REACHABLE' } satisfies SourceProbeEvent);
      });
      tried.once('timeout', retry);
      tried.once('error', retry);
    };
    attempt();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      socket?.destroy();
    };
  });
}
