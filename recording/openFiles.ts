import { readdir, readlink } from 'node:fs/promises';

/**
 * Whether any process this one can see has `path` open (Linux /proc; null where /proc cannot tell). The queue
 * asks before taking a `.part` file as a crash remnant: a recorder whose camera stalled writes nothing for a
 * while, but still holds its file, even when the control plane restarted and forgot it was told so.
 */
export async function isOpenByAnyProcess(path: string): Promise<boolean | null> {
  let pids: string[];
  try {
    pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name));
  } catch {
    return null;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = await readdir(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if ((await readlink(`/proc/${pid}/fd/${fd}`)) === path) return true;
      } catch {
        // The fd closed meanwhile.
      }
    }
  }
  return false;
}
