/** RFC 6455: a close frame's reason fits in 123 bytes (125 minus the status code). */
export const MAX_CLOSE_REASON_BYTES = 123;

/**
 * A websocket close reason that `ws` always accepts: printable ASCII only (anything else becomes `?`, so a
 * client's non-ASCII text can never push the UTF-8 length past the limit, and no control character goes out),
 * cut to {@link MAX_CLOSE_REASON_BYTES} with an ellipsis. `ws.close()` throws on a longer reason, and a throw there
 * (inside the socket's data handler) used to end the whole process.
 *
 * @example
 * closeReason('message is not JSON: Unexpected token \'é\'') // "message is not JSON: Unexpected token '?'"
 */
export function closeReason(text: string): string {
  const ascii = text.replace(/[^\x20-\x7e]/g, '?');
  return ascii.length <= MAX_CLOSE_REASON_BYTES ? ascii : `${ascii.slice(0, MAX_CLOSE_REASON_BYTES - 3)}...`;
}
