/** An error's message (or the thrown value as text), for logs and reports. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A twin document or setting that cannot be applied: the message says what and where, and holds no secret. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** GStreamer refused a pipeline description (the message is the parser's, redacted). */
export class PipelineParseError extends Error {
  override readonly name = 'PipelineParseError';
  constructor(
    readonly pipeline: string,
    message: string,
  ) {
    super(`${pipeline}: ${message}`);
  }
}
