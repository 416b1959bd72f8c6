import { pathToFileURL } from 'node:url';
import type { AnalyzerFactory } from './types.js';

/** A plugin module that cannot be used: not found, throws on import, or exports no factory. */
export class AnalyzerPluginError extends Error {
  override readonly name = 'AnalyzerPluginError';
}

/** Imports a plugin module (absolute path) and returns its factory, the module's default export. */
export async function loadAnalyzerPlugin(path: string): Promise<AnalyzerFactory> {
  let module: { default?: unknown };
  try {
    module = (await import(pathToFileURL(path).href)) as { default?: unknown };
  } catch (error) {
    throw new AnalyzerPluginError(`${path} does not load: ${(error as Error).message}`);
  }
  if (typeof module.default !== 'function') throw new AnalyzerPluginError(`${path} has no default export function (an AnalyzerFactory)`);
  return module.default as AnalyzerFactory;
}
