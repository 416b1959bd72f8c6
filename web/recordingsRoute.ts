/**
 * `GET /api/recordings`: recorded segments (local and uploaded) in a time range, and
 * `GET|HEAD /api/recordings/<id>/file`: a segment's local file, for the status page to play. A file is found by
 * the segment id the queue gave it, in the queue's own list: nothing the client sends is ever joined to a folder,
 * so only files the queue knows can be served.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RecordingsPort } from '../actors/ModuleRecordings.js';
import { ConfigError } from '../config/errors.js';
import { parseRecordingsQuery, queryRecordings } from '../recording/recordingsQuery.js';
import { notModified, parseRange, rangeStillValid, validators } from './httpConditional.js';

/** As /media: the real file is opened, never through a final symlink, never blocking on a FIFO. */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
/** Segment ids are `<stream>-<8 digits>`: anything else is not one (checked before any lookup). */
const SEGMENT_ID = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}-\d{8,}$/;
const STREAM_CHUNK = 256 * 1024;

const OFF = 'recording is off (twin key "record")';

/**
 * Registers the recordings routes on `app`. Bad query values are 400 with the reason; with recording off the list
 * is 404. The file route answers ranges and conditional requests (a `<video>` element seeks with them).
 *
 * @example
 * recordingsRoute(app, plane.recordings);
 * // GET /api/recordings?from=2024-05-01T00:00:00Z&to=2024-05-02T00:00:00Z&stream=video
 */
export function recordingsRoute(app: FastifyInstance, recordings: RecordingsPort): void {
  app.get('/api/recordings', async (request, reply) => {
    reply.header('cache-control', 'no-store');
    const entries = recordings.entries();
    if (entries === null) return reply.code(404).send({ error: OFF });
    let query;
    try {
      query = parseRecordingsQuery(request.query as Record<string, string | undefined>, Date.now());
    } catch (error) {
      if (error instanceof ConfigError) return reply.code(400).send({ error: error.message });
      throw error;
    }
    return queryRecordings(entries, query);
  });

  app.route({
    method: ['GET', 'HEAD'],
    url: '/api/recordings/:id/file',
    handler: (request, reply) => serveSegment(request, reply, recordings),
  });
}

async function serveSegment(request: FastifyRequest, reply: FastifyReply, recordings: RecordingsPort): Promise<FastifyReply> {
  const { id } = request.params as { id: string };
  const entries = recordings.entries();
  if (entries === null) return reply.code(404).send({ error: OFF });
  const entry = SEGMENT_ID.test(id) ? entries.find((e) => e.id === id) : undefined;
  if (!entry || entry.local !== 'present') return reply.code(404).send({ error: `no local file for segment "${id.slice(0, 80)}"` });
  let file: FileHandle;
  try {
    file = await open(entry.path, OPEN_FLAGS);
  } catch {
    return reply.code(404).send({ error: `segment ${entry.id}: its local file is gone` });
  }
  let handedOver = false;
  try {
    const stat = await file.stat();
    // The queue's own file as it was queued: a file replaced since (another size) is not served as this segment.
    if (!stat.isFile() || stat.size !== entry.size) return reply.code(404).send({ error: `segment ${entry.id}: its local file changed` });
    const { etag, lastModified } = validators(stat);
    reply.headers({
      'content-type': entry.path.endsWith('.ts') ? 'video/mp2t' : 'video/mp4',
      'cache-control': 'no-cache',
      'accept-ranges': 'bytes',
      etag,
      'last-modified': lastModified,
      'content-disposition': `inline; filename="${entry.path.split('/').pop()!.replace(/[^A-Za-z0-9_.-]/g, '_')}"`,
      'x-content-type-options': 'nosniff',
      'content-security-policy': 'sandbox',
    });
    if (notModified(request, etag, stat)) return reply.code(304).send();
    const range = rangeStillValid(request, etag, lastModified) ? parseRange(request.headers.range, stat.size) : null;
    if (range === 'unsatisfiable') return reply.code(416).header('content-range', `bytes */${stat.size}`).send();
    const start = range?.start ?? 0;
    const length = range ? range.end - range.start + 1 : stat.size;
    if (range) reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${stat.size}`);
    reply.header('content-length', length);
    if (request.method === 'HEAD' || length === 0) return reply.send();
    handedOver = true; // the stream closes the file when it ends or the client goes away
    return reply.send(file.createReadStream({ start, end: start + length - 1, highWaterMark: STREAM_CHUNK }));
  } finally {
    if (!handedOver) void file.close();
  }
}
