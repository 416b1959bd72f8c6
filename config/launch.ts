/**
 * Makes a launch line parse as it does when typed into a shell for gst-launch-1.0: the shell strips single
 * quotes (`location='rtsp://…'`, as in the seed's examples), GStreamer's own parser only knows double quotes.
 * Single-quoted values become double-quoted ones (their inner `"` and `\` escaped). Double-quoted parts are
 * left as they are.
 */
export function shellQuotesToGst(launch: string): string {
  let out = '';
  let i = 0;
  while (i < launch.length) {
    const c = launch[i]!;
    if (c === '"') {
      // Copy a double-quoted run untouched, honouring backslash escapes.
      let j = i + 1;
      while (j < launch.length && launch[j] !== '"') j += launch[j] === '\\' ? 2 : 1;
      out += launch.slice(i, j + 1);
      i = j + 1;
    } else if (c === "'") {
      const end = launch.indexOf("'", i + 1);
      if (end < 0) {
        out += launch.slice(i);
        break;
      }
      out += `"${launch.slice(i + 1, end).replace(/[\\"]/g, (m) => `\\${m}`)}"`;
      i = end + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}
