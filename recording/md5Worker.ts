/**
 * Worker thread that hashes whole segment files (MD5, base64), so the upload's main thread only hashes the
 * blocks it sends. Messages: `{ id, path }` in, `{ id, md5 }` or `{ id, error }` out.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { parentPort } from 'node:worker_threads';

parentPort?.on('message', (message: { id: number; path: string }) => {
  const hash = createHash('md5');
  pipeline(createReadStream(message.path, { highWaterMark: 1 << 20 }), hash)
    .then(() => parentPort?.postMessage({ id: message.id, md5: hash.digest('base64') }))
    .catch((error: NodeJS.ErrnoException) => parentPort?.postMessage({ id: message.id, error: error.code ?? String(error) }));
});
