/**
 * Where set-up puts what analysis needs at run time (scripts/build-analysis.sh), for both processes: this file
 * loads neither node-gtk nor a model, so the control plane may import it.
 */
import { fileURLToPath } from 'node:url';

/** The module's GStreamer plugins (the `inference` element): dist/gst-plugins. */
export const GST_PLUGIN_DIR = fileURLToPath(new URL('../gst-plugins/', import.meta.url));

/** The converted detector and a copy of its tfjs graph: dist/models. */
export const MODELS_DIR = fileURLToPath(new URL('../models/', import.meta.url));

/**
 * GST_PLUGIN_PATH for the media engine: the module's plugins first, then whatever the user mounted and set (the
 * seed's way to add plugins keeps working). Set it in the engine's environment at fork: GStreamer reads it at init.
 *
 * @example
 * fork(ENGINE_ENTRY, [], { env: { ...process.env, GST_PLUGIN_PATH: gstPluginPath(process.env) } });
 */
export function gstPluginPath(env: NodeJS.ProcessEnv): string {
  return [GST_PLUGIN_DIR.replace(/\/$/, ''), env.GST_PLUGIN_PATH].filter((p) => p !== undefined && p !== '').join(':');
}
