/**
 * The `decoder` setting: which decoders `decodebin` (and `uridecodebin`, `playbin`) picks in this engine, by
 * GStreamer plugin feature rank, the only knob autoplugging listens to. The ranks are process-wide (the registry),
 * so the choice holds for every pipeline of the engine, analysis taps and users' decodebins alike.
 */
import type { DecoderChoice } from '../ipc/analysis.js';
import { Gst } from './gst.js';

type HardwareFamily = Exclude<DecoderChoice, 'auto' | 'software'>;

/** Decoder factories by family, by name: what each family's GStreamer plugin registers when its hardware is there. */
export const DECODER_FAMILIES: Readonly<Record<HardwareFamily, RegExp>> = {
  // gst-plugins-bad nvcodec (CUDA/NVDEC): nvh264dec, nvh265dec, nvvp9dec, nvav1dec, nvh264sldec, nvjpegdec, ...
  nvcodec: /^nv[a-z0-9]+(sl)?dec$/,
  // gstreamer-vaapi (vaapih264dec, ...) and gst-plugins-bad va (vah264dec, ...)
  vaapi: /^(vaapi[a-z0-9]+dec|va[a-z0-9]+dec)$/,
  // V4L2 memory-to-memory decoders (stateful v4l2h264dec, stateless v4l2slh264dec): Raspberry Pi, i.MX, Rockchip
  v4l2: /^v4l2(sl)?[a-z0-9]+dec$/,
};

/** Above every software decoder (avdec_h264 is PRIMARY): decodebin tries these first. */
const PREFERRED_RANK = Gst.Rank.PRIMARY + 100;

export interface DecoderRankResult {
  readonly choice: DecoderChoice;
  /** Factories now ranked above software ones. */
  readonly raised: string[];
  /** Hardware factories now at rank NONE (decodebin never picks them). */
  readonly lowered: string[];
  /** The choice named a family none of whose decoders is registered here (no such hardware or plugin). */
  readonly missing: string[];
}

/** Original ranks of the factories this module changed, so `auto` puts them back. */
const originalRanks = new Map<string, number>();

type Factory = InstanceType<typeof Gst.ElementFactory>;

function videoDecoders(): Factory[] {
  const type = Gst.ELEMENT_FACTORY_TYPE_DECODER | Gst.ELEMENT_FACTORY_TYPE_MEDIA_VIDEO | Gst.ELEMENT_FACTORY_TYPE_MEDIA_IMAGE;
  return Gst.ElementFactory.listGetElements(type, Gst.Rank.NONE) as Factory[];
}

function familyOf(name: string, families: Readonly<Record<HardwareFamily, RegExp>>): HardwareFamily | null {
  for (const [family, pattern] of Object.entries(families) as Array<[HardwareFamily, RegExp]>) {
    if (pattern.test(name)) return family;
  }
  return null;
}

function setRank(factory: Factory, rank: number): void {
  const name = factory.getName() ?? '';
  if (!originalRanks.has(name)) originalRanks.set(name, factory.getRank());
  factory.setRank(rank);
}

/**
 * Applies a decoder choice to the registry's ranks; call after `Gst.init` and before pipelines are built.
 * - `auto`: GStreamer's own ranks (those this function changed are restored);
 * - `software`: hardware decoders at rank NONE, so decodebin only picks software ones (avdec_*, openh264dec, ...);
 * - `nvcodec` / `vaapi` / `v4l2`: that family's decoders ranked above every software decoder; the others' ranks
 *   restored. When none of that family is registered, nothing is raised and `missing` names it.
 *
 * @example
 * const { raised, missing } = applyDecoderChoice('nvcodec'); // raised: ['nvh264dec', ...] on a GPU host
 */
export function applyDecoderChoice(choice: DecoderChoice, families: Readonly<Record<HardwareFamily, RegExp>> = DECODER_FAMILIES): DecoderRankResult {
  const raised: string[] = [];
  const lowered: string[] = [];
  for (const factory of videoDecoders()) {
    const name = factory.getName() ?? '';
    const family = familyOf(name, families);
    const original = originalRanks.get(name);
    if (family === null && original === undefined) continue;
    if (choice === 'software' && family !== null) {
      setRank(factory, Gst.Rank.NONE);
      lowered.push(name);
    } else if (family !== null && family === choice) {
      setRank(factory, PREFERRED_RANK);
      raised.push(name);
    } else if (original !== undefined) {
      factory.setRank(original);
      originalRanks.delete(name);
    }
  }
  const missing = choice !== 'auto' && choice !== 'software' && raised.length === 0 ? [choice] : [];
  return { choice, raised: raised.sort(), lowered: lowered.sort(), missing };
}

/** The decoder element a bin (a decodebin) holds now, as its factory name; null when none (raw input, not yet). */
export function pickedDecoder(bin: InstanceType<typeof Gst.Element>, children: (bin: InstanceType<typeof Gst.Element>) => Iterable<InstanceType<typeof Gst.Element>>): string | null {
  for (const element of children(bin)) {
    const factory = element.getFactory();
    if (factory && /Decoder/.test(factory.getMetadata('klass') ?? '')) return factory.getName() ?? null;
  }
  return null;
}
