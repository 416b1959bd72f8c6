import { allElements, Gst, type GstElement } from './gst.js';

/** Source elements that reach a camera or server over the network, and the property that says where. */
const NETWORK_SOURCES: Record<string, 'location' | 'uri' | 'host'> = {
  rtspsrc: 'location',
  souphttpsrc: 'location',
  rtmpsrc: 'location',
  rtmp2src: 'location',
  srtsrc: 'uri',
  tcpclientsrc: 'host',
  uridecodebin: 'uri',
  uridecodebin3: 'uri',
  urisourcebin: 'uri',
};

/** The source properties read here (the plugins have no introspection data: declared once, here). */
interface SourceProperties {
  readonly location?: string | null;
  readonly uri?: string | null;
  readonly host?: string | null;
  readonly port?: number;
}

/**
 * GST_RESOURCE_ERROR codes that mean "could not reach it" (not found, could not open, read or write, closed under
 * us), as opposed to a pipeline's own faults (not negotiated, a missing plugin, bad settings).
 */
const UNREACHABLE_CODES = new Set<number>([
  Gst.ResourceError.NOT_FOUND,
  Gst.ResourceError.OPEN_READ,
  Gst.ResourceError.OPEN_WRITE,
  Gst.ResourceError.OPEN_READ_WRITE,
  Gst.ResourceError.READ,
  Gst.ResourceError.WRITE,
  Gst.ResourceError.BUSY,
]);

/**
 * The location of the network source an error came from, when the error says the source could not reach its
 * camera or server; null otherwise. The element that posted it, or a bin around it (rtspsrc's inner udpsrc, a
 * uridecodebin's source), is looked for among the known network sources.
 */
export function unreachableSourceUri(source: unknown, error: { domain: number; code: number }): string | null {
  if (error.domain !== Gst.resourceErrorQuark() || !UNREACHABLE_CODES.has(error.code)) return null;
  for (let element = source instanceof Gst.Element ? source : null; element; element = parentElement(element)) {
    const uri = sourceLocation(element);
    if (uri !== undefined) return uri;
  }
  return null;
}

/** The location of the first network source in a pipeline, or null when it reads none (a file, a test source). */
export function networkSourceUri(pipeline: GstElement): string | null {
  for (const element of allElements(pipeline)) {
    const uri = sourceLocation(element);
    if (uri !== undefined) return uri;
  }
  return null;
}

/** Where a network source element reads from; undefined when the element is not one. */
function sourceLocation(element: GstElement): string | null | undefined {
  const property = NETWORK_SOURCES[element.getFactory()?.getName() ?? ''];
  if (!property) return undefined;
  const props = element as GstElement & SourceProperties;
  if (property === 'host') return props.host ? `tcp://${props.host}:${props.port ?? 0}` : null;
  return props[property] ?? null;
}

function parentElement(element: GstElement): GstElement | null {
  const parent = element.getParent();
  return parent instanceof Gst.Element ? parent : null;
}

/** rtspsrc's jitterbuffer latency when the launch line does not set one. */
export const RTSPSRC_DEFAULT_LATENCY_MS = 2_000;
/** What it becomes over TCP: packets arrive in order and complete, so only network jitter needs absorbing. */
export const RTSPSRC_TCP_LATENCY_MS = 200;
/** GstRTSPLowerTrans TCP. */
const LOWER_TRANS_TCP = 4;

/** The rtspsrc properties read and set here (no introspection data: declared once, here). */
interface RtspSrcProperties {
  latency: number;
  readonly protocols: number;
}

/**
 * Lowers the jitterbuffer latency of every rtspsrc that receives over TCP only and was left at its 2 s default:
 * over TCP nothing is reordered or lost, so the 2 s only delayed every frame (and a camera's comeback) by 2 s. A
 * launch line that sets `latency=` to anything else keeps it. Returns the names of the elements changed.
 */
export function lowerTcpJitterLatency(pipeline: GstElement): string[] {
  const changed: string[] = [];
  for (const element of allElements(pipeline)) {
    if (element.getFactory()?.getName() !== 'rtspsrc') continue;
    const rtspsrc = element as GstElement & RtspSrcProperties;
    if (rtspsrc.protocols !== LOWER_TRANS_TCP || rtspsrc.latency !== RTSPSRC_DEFAULT_LATENCY_MS) continue;
    rtspsrc.latency = RTSPSRC_TCP_LATENCY_MS;
    changed.push(element.name);
  }
  return changed;
}
