import { createRequire } from 'node:module';

// node-gtk is CommonJS with generated declarations (scripts/setup.sh); this folder is the only one that loads it.
const require = createRequire(import.meta.url);
export const gi = require('node-gtk') as typeof import('node-gtk');
export const GLib = gi.require('GLib', '2.0');
export const Gst = gi.require('Gst', '1.0');

export type GstElement = InstanceType<typeof Gst.Element>;
export type GstPipeline = InstanceType<typeof Gst.Pipeline>;
export type GstMessage = InstanceType<typeof Gst.Message>;
