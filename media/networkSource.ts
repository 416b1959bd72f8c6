import { Gst, type GstElement } from './gst.js';

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
    const property = NETWORK_SOURCES[element.getFactory()?.getName() ?? ''];
    if (!property) continue;
    const props = element as GstElement & SourceProperties;
    if (property === 'host') return props.host ? `tcp://${props.host}:${props.port ?? 0}` : null;
    return props[property] ?? null;
  }
  return null;
}

function parentElement(element: GstElement): GstElement | null {
  const parent = element.getParent();
  return parent instanceof Gst.Element ? parent : null;
}
