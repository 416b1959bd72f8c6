import { createRequire } from 'node:module';

// node-gtk is CommonJS with generated declarations (scripts/setup.sh); this folder is the only one that loads it.
const require = createRequire(import.meta.url);
export const gi = require('node-gtk') as typeof import('node-gtk');
export const GLib = gi.require('GLib', '2.0');
export const Gst = gi.require('Gst', '1.0');
export const GstApp = gi.require('GstApp', '1.0');

export type GstElement = InstanceType<typeof Gst.Element>;
export type GstPipeline = InstanceType<typeof Gst.Pipeline>;
export type GstMessage = InstanceType<typeof Gst.Message>;
export type GstStructure = InstanceType<typeof Gst.Structure>;
export type GstPromise = InstanceType<typeof Gst.Promise>;
export type GstPad = InstanceType<typeof Gst.Pad>;
export type AppSink = InstanceType<typeof GstApp.AppSink>;
export type AppSrc = InstanceType<typeof GstApp.AppSrc>;

/*
 * Typed views of elements. A parsed element is declared as a GstElement; appsink and appsrc have introspected
 * classes (GstApp) that `instanceof` recognises, but queue, proxysrc and webrtcbin live in plugins without
 * introspection data, so the GObject properties the engine touches on them are declared here, once each.
 */

/** queue's properties set by the shared fan-out. */
export interface QueueProperties {
  /** GstQueueLeaky: 0 no, 1 upstream (drops new buffers), 2 downstream (drops old ones). */
  leaky: number;
  maxSizeBuffers: number;
}

/** proxysrc's link to the proxysink it reads (in another pipeline of this process). */
export interface ProxySrcProperties {
  proxysink: GstElement | null;
}

/** webrtcbin's properties read or set here (the states are its GstWebRTC enums, as numbers). */
export interface WebRtcBinProperties {
  stunServer: string | null;
  readonly iceConnectionState: number;
  readonly connectionState: number;
  readonly iceGatheringState: number;
}

/** valve's switch (the analysis taps). */
export interface ValveProperties {
  drop: boolean;
  /** 0 drop-all, 1 forward-sticky-events, 2 transform-to-gap; settable in NULL or READY only. */
  dropMode: number;
}

/** splitmuxsink's file name pattern (the recorder). */
export interface SplitMuxSinkProperties {
  location: string;
}

/** tcpserversink's port once bound (`port=0` asks the system for one). */
export interface TcpServerSinkProperties {
  readonly currentPort: number;
}

export type Queue = GstElement & QueueProperties;
export type Valve = GstElement & ValveProperties;
export type SplitMuxSink = GstElement & SplitMuxSinkProperties;
export type TcpServerSink = GstElement & TcpServerSinkProperties;
export type GstBin = InstanceType<typeof Gst.Bin>;
export type ProxySrc = GstElement & ProxySrcProperties;
export type WebRtcBinElement = GstElement & WebRtcBinProperties;

/** GstChildProxy, which every GstBin implements (the generated GstBin class does not declare it). */
interface ChildProxy {
  getChildrenCount(): number;
  getChildByIndex(index: number): unknown;
}

/** A wrong element handed to a typed view: a bug here, not a user's mistake. */
function notA(kind: string, element: GstElement): TypeError {
  return new TypeError(`${element.name} is a ${element.getFactory()?.getName() ?? 'bin'}, not a ${kind}`);
}

function ofFactory(element: GstElement, factory: string): void {
  if (element.getFactory()?.getName() !== factory) throw notA(factory, element);
}

/** @throws TypeError when `element` is not an appsink. */
export function asAppSink(element: GstElement): AppSink {
  if (element instanceof GstApp.AppSink) return element;
  throw notA('appsink', element);
}

/** @throws TypeError when `element` is not an appsrc. */
export function asAppSrc(element: GstElement): AppSrc {
  if (element instanceof GstApp.AppSrc) return element;
  throw notA('appsrc', element);
}

/**
 * A typed view for elements of one factory (a plugin without introspection data): the view checks the factory
 * and throws a TypeError for any other element.
 */
function viewOf<T extends GstElement>(factory: string): (element: GstElement) => T {
  return (element) => {
    ofFactory(element, factory);
    return element as T;
  };
}

export const asQueue = viewOf<Queue>('queue');
export const asProxySrc = viewOf<ProxySrc>('proxysrc');
export const asValve = viewOf<Valve>('valve');
export const asSplitMuxSink = viewOf<SplitMuxSink>('splitmuxsink');
export const asTcpServerSink = viewOf<TcpServerSink>('tcpserversink');

/** The object as a bin (a parent, a parsed bin), or null when it is not one. */
export function binOrNull(object: unknown): GstBin | null {
  return object instanceof Gst.Bin ? object : null;
}

/** A GstStructure's guint64 field: node-gtk returns `[found, value]` where the generated types say `boolean`. */
export function uint64Field(structure: GstStructure, field: string): bigint | null {
  const result: unknown = structure.getUint64(field);
  const [found, value] = result as [boolean, bigint];
  return found ? value : null;
}

export const asWebRtcBin = viewOf<WebRtcBinElement>('webrtcbin');

/** Parses a gst-launch description as gst-launch-1.0 does; a missing element or property is an error. */
export function parseLaunch(launch: string): GstElement {
  return Gst.parseLaunchFull(launch, null, Gst.ParseFlags.FATAL_ERRORS);
}

/** Every element inside a bin, depth first (GstChildProxy: node-gtk cannot walk GstIterator). */
export function* allElements(bin: GstElement): Generator<GstElement> {
  if (!(bin instanceof Gst.Bin)) return;
  const proxy = bin as InstanceType<typeof Gst.Bin> & ChildProxy;
  const count = proxy.getChildrenCount();
  for (let i = 0; i < count; i++) {
    const child = proxy.getChildByIndex(i);
    if (!(child instanceof Gst.Element)) continue;
    yield child;
    yield* allElements(child);
  }
}

/** The name of a message's source (or any GstObject), for logs and reasons. */
export function objectName(object: unknown, fallback = 'unknown'): string {
  return object instanceof Gst.Object && object.name ? object.name : fallback;
}

/*
 * Boxed fields of a structure (promise replies, stats). GValue.getBoxed() is declared `void`: what comes back is
 * checked with `instanceof`, which node-gtk's wrappers answer correctly (GstStructure, GError,
 * GstWebRTCSessionDescription).
 */

/** The boxed value of `field`, unchecked; null when the structure has no such field. */
export function boxedField(structure: GstStructure, field: string): unknown {
  if (!structure.hasField(field)) return null;
  const value: unknown = structure.getValue(field)?.getBoxed();
  return value ?? null;
}

/** A structure nested in `field` (a stats entry), or null. */
export function structureField(structure: GstStructure, field: string): GstStructure | null {
  const value = boxedField(structure, field);
  return value instanceof Gst.Structure ? value : null;
}

/** The message of a GError in `field` (webrtcbin reports refused descriptions so), or null when there is none. */
export function errorField(structure: GstStructure | null, field = 'error'): string | null {
  if (!structure || !structure.hasField(field)) return null;
  const value = boxedField(structure, field);
  return value instanceof GLib.Error ? value.message : 'unknown error';
}
