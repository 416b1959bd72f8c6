import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A change between dark and bright, or silence and sound, at a viewer: its presentation time in ns. */
export interface AvEdge {
  kind: 'video' | 'audio';
  edge: 'up' | 'down';
  t: number;
}

/**
 * The picture's and the sound's edges as ffmpeg presents an RTSP/TCP stream for `seconds` (both decoded, 640x360
 * is light): `signalstats` gives each frame's average luma (bright above 128) and `astats` the RMS of every 2 ms of
 * audio (sound above -30 dB), printed by `metadata`/`ametadata` into two files, one per kind, since ffmpeg's own
 * warnings would interleave with them on stderr.
 *
 * Why ffmpeg beside the GStreamer viewer (bench/support/avSyncViewer.py): ffmpeg's RTP demuxer puts every stream on
 * the sender's clock by its RTCP sender reports (the NTP/RTP pairs) from the first report on, as ffplay and VLC
 * (live555) do; how the packets happened to arrive does not move its A/V offset. rtspsrc's does: in these runs its
 * lip-sync corrections stayed under 0.1 ms ("offset too small") while what it presented moved by tens of ms with how
 * it joined a playing media. Edges before `skipS` are left out: before the first reports of both streams ffmpeg times
 * each from its first packet.
 */
export async function ffmpegAvEdges(url: string, seconds: number, skipS = 6): Promise<AvEdge[]> {
  const dir = mkdtempSync(join(tmpdir(), 'ffedges-'));
  const video = join(dir, 'video.txt');
  const audio = join(dir, 'audio.txt');
  try {
    const ffmpeg = spawn('ffmpeg', [
      '-hide_banner', '-nostats', '-loglevel', 'error', '-rtsp_transport', 'tcp', '-i', url, '-t', String(seconds),
      '-vf', `signalstats,metadata=print:key=lavfi.signalstats.YAVG:file=${video}`,
      '-af', `asetnsamples=96,astats=metadata=1:reset=1,ametadata=print:key=lavfi.astats.Overall.RMS_level:file=${audio}`,
      '-f', 'null', '-',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    ffmpeg.stderr!.on('data', (chunk: Buffer) => {
      if (stderr.length < 4096) stderr += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => ffmpeg.once('exit', resolve));
    const edges = [
      ...edgesOf(readOr(video), 'video', /^lavfi\.signalstats\.YAVG=([\d.]+)/, (v) => Number(v) > 128),
      ...edgesOf(readOr(audio), 'audio', /^lavfi\.astats\.Overall\.RMS_level=(\S+)/, (v) => v !== '-inf' && Number(v) > -30),
    ].filter((e) => e.t >= skipS * 1e9);
    if (edges.length === 0 && code !== 0) throw new Error(`ffmpeg exited ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
    return edges.sort((a, b) => a.t - b.t);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** `metadata=print` writes "frame:N pts:P pts_time:T" and then the key's line, for every frame. */
function edgesOf(text: string, kind: AvEdge['kind'], key: RegExp, high: (value: string) => boolean): AvEdge[] {
  const edges: AvEdge[] = [];
  let time: number | null = null;
  let last: boolean | null = null;
  for (const line of text.split('\n')) {
    const frame = /pts_time:(-?[\d.]+)/.exec(line);
    if (frame) {
      time = Number(frame[1]);
      continue;
    }
    const value = key.exec(line);
    if (!value || time === null) continue;
    const now = high(value[1]!);
    if (last !== null && now !== last) edges.push({ kind, edge: now ? 'up' : 'down', t: Math.round(time * 1e9) });
    last = now;
  }
  return edges;
}
