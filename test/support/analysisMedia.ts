/**
 * Media for analysis tests and the benchmark, made or fetched once into `.cache/` (kept between runs):
 * - real photos from Debian packages (`python3-skimage`'s astronaut and motorcycle, `python-matplotlib-data`'s
 *   Grace Hopper), fetched with `apt-get download` and unpacked with `dpkg-deb -x`, nothing installed;
 * - an H.264 720p30 clip encoded by gst-launch-1.0 (x264), so tests and benchmarks relay a camera-like stream
 *   without spending a core on encoding while they measure.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CACHE = fileURLToPath(new URL('../../../.cache/', import.meta.url));

/** Photos by name: the Debian package and the path inside it. */
export const PHOTOS = {
  astronaut: { pkg: 'python3-skimage', path: 'usr/lib/python3/dist-packages/skimage/data/astronaut.png' },
  motorcycle: { pkg: 'python3-skimage', path: 'usr/lib/python3/dist-packages/skimage/data/motorcycle_left.png' },
  chelsea: { pkg: 'python3-skimage', path: 'usr/lib/python3/dist-packages/skimage/data/chelsea.png' },
  grace_hopper: { pkg: 'python-matplotlib-data', path: 'usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg' },
} as const;
export type PhotoName = keyof typeof PHOTOS;

function download(pkg: string, into: string): void {
  const fetch = () => execFileSync('apt-get', ['download', '-q', pkg], { cwd: into, stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    fetch();
  } catch {
    // A fresh machine has empty package lists.
    execFileSync('apt-get', ['update', '-q'], { stdio: 'ignore' });
    fetch();
  }
}

/** The photo's path on disk, fetching its Debian package the first time. */
export function photoPath(name: PhotoName): string {
  const { pkg, path } = PHOTOS[name];
  const root = join(CACHE, 'test-photos', pkg);
  const file = join(root, path);
  if (existsSync(file)) return file;
  mkdirSync(join(CACHE, 'test-photos'), { recursive: true });
  const work = mkdtempSync(join(CACHE, 'test-photos', `${pkg}-`));
  try {
    download(pkg, work);
    const deb = readdirSync(work).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${pkg} gave no .deb`);
    const tree = join(work, 'tree');
    execFileSync('dpkg-deb', ['-x', join(work, deb), tree]);
    rmSync(root, { recursive: true, force: true });
    renameSync(tree, root);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return file;
}

/** The gst-launch source that plays a photo as live video (decoded, frozen, `fps` frames a second). */
export function photoSource(name: PhotoName, fps = 10): string {
  const file = photoPath(name);
  const decoder = file.endsWith('.jpg') ? 'jpegdec' : 'pngdec';
  return `filesrc location=${file} ! ${decoder} ! videoconvert ! imagefreeze is-live=true ! video/x-raw,framerate=${fps}/1`;
}

/** A 1280x720 30 fps H.264 clip in Matroska, 3 Mb/s constant (as a camera sends), key frame every second, encoded once. */
export function clip720p30(seconds: number): string {
  const file = join(CACHE, 'test-media', `clip-720p30-3mbps-${seconds}s.mkv`);
  if (existsSync(file)) return file;
  mkdirSync(join(CACHE, 'test-media'), { recursive: true });
  const launch =
    `videotestsrc num-buffers=${seconds * 30} pattern=ball ! video/x-raw,width=1280,height=720,framerate=30/1 ` +
    '! timeoverlay font-desc="Sans 48" ! videoconvert ! x264enc speed-preset=veryfast key-int-max=30 bitrate=3000 pass=cbr ' +
    `! video/x-h264,profile=main ! h264parse ! matroskamux ! filesink location=${file}.tmp`;
  execFileSync('gst-launch-1.0', ['-q', ...launch.split(' ')], { stdio: ['ignore', 'ignore', 'pipe'] });
  renameSync(`${file}.tmp`, file);
  return file;
}

/** Plays the clip in real time as a live camera would deliver it (parsed H.264, one access unit a buffer). */
export function clipSource(file: string): string {
  return `filesrc location=${file} ! matroskademux ! h264parse ! identity sync=true`;
}
