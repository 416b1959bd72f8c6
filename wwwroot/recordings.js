// The status page's recording section: the `recording` part of the status document, the most recent segments from
// /api/recordings, and a player for a segment whose file is still on the device. Plain DOM, no framework, no CDN.
(() => {
  'use strict';
  /** Segments listed at most (the newest). */
  const SHOWN = 20;
  /** The list is fetched again at most this often while segments come and go. */
  const REFRESH_MS = 2000;
  const $ = (id) => document.getElementById(id);
  let lastCounts = '';
  let fetching = null;
  let lastFetch = 0;
  let pending = null;

  function bytes(n) {
    if (n === null || n === undefined) return '–';
    const units = ['B', 'kB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
  }

  function cell(text, className) {
    const td = document.createElement('td');
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function summary(r) {
    const parts = [
      `${r.written} written`,
      `${r.queued} queued (${bytes(r.bytesPending)})`,
      `${r.uploaded} uploaded`,
    ];
    if (r.failed) parts.push(`${r.failed} failed`);
    if (r.dropped) parts.push(`${r.dropped} dropped`);
    if (r.oldestPendingAgeS !== null) parts.push(`oldest waiting ${Math.round(r.oldestPendingAgeS)} s`);
    if (r.uploadBytesPerSecond !== null) parts.push(`${bytes(r.uploadBytesPerSecond)}/s`);
    parts.push(`${bytes(r.bytesLocal)} of ${bytes(r.maxBytes)} on disk`);
    return parts.join(', ');
  }

  function play(segment) {
    const video = $('recording-player');
    video.hidden = false;
    const src = `/api/recordings/${encodeURIComponent(segment.id)}/file`;
    // A <video> cannot send a header: the token goes in the URL, as for the websocket.
    video.src = window.gstAuth ? window.gstAuth.withToken(src) : src;
    $('recording-playing').textContent = `${segment.stream} ${new Date(segment.start).toLocaleString()}`;
    video.play().catch(() => undefined);
  }

  function renderList(answer) {
    const segments = answer.segments.slice(-SHOWN).reverse();
    const rows = segments.map((s) => {
      const tr = document.createElement('tr');
      tr.dataset.segment = s.id;
      const uploads = s.uploads.map((u) => u.target).join(', ');
      const action = document.createElement('td');
      if (s.file) {
        const button = document.createElement('button');
        button.type = 'button';
        button.textContent = 'play';
        button.addEventListener('click', () => play(s));
        action.appendChild(button);
      } else {
        action.textContent = 'uploaded only';
        action.className = 'muted';
      }
      tr.append(
        cell(s.stream),
        cell(new Date(s.start).toLocaleTimeString()),
        cell(`${(s.durationMs / 1000).toFixed(1)} s`),
        cell(bytes(s.size)),
        cell(s.state, `state state-${s.state === 'uploaded' ? 'playing' : s.state === 'pending' ? 'pending' : 'backoff'}`),
        cell(uploads || (s.reason ?? '')),
        action,
      );
      return tr;
    });
    const empty = Object.assign(document.createElement('tr'), { innerHTML: '<td colspan="7" class="muted">no segments yet</td>' });
    $('recording-segments').replaceChildren(...(rows.length ? rows : [empty]));
  }

  async function refresh() {
    lastFetch = Date.now();
    const from = new Date(Date.now() - 6 * 3600 * 1000).toISOString();
    try {
      // Signed like the page's other requests when the module asks for sign-in (auth.js).
      const headers = window.gstAuth ? window.gstAuth.headers() : {};
      const response = await fetch(`/api/recordings?from=${encodeURIComponent(from)}&limit=5000`, { cache: 'no-store', headers });
      if (!response.ok) return;
      renderList(await response.json());
    } catch {
      // The module restarts, or the network hiccups: the next status change tries again.
    }
  }

  function scheduleRefresh() {
    if (fetching || pending) return;
    const wait = Math.max(0, REFRESH_MS - (Date.now() - lastFetch));
    pending = setTimeout(() => {
      pending = null;
      fetching = refresh().finally(() => { fetching = null; });
    }, wait);
  }

  /** Called by index.html with each status document. */
  window.renderRecordings = (status) => {
    const section = $('recording');
    const r = status.recording;
    if (!r) {
      section.hidden = true;
      lastCounts = '';
      return;
    }
    section.hidden = false;
    $('recording-summary').textContent = summary(r);
    $('recording-alarm').textContent = r.alarm ? `disk alarm (${r.alarm.level}): ${r.alarm.message}` : '';
    const targets = Object.entries(r.targets).map(([name, t]) => `${name}: ${t.state}${t.lastError ? ` (${t.lastError})` : ''}`);
    const recorders = Object.entries(r.recorders).map(([name, rec]) => `${name} ${rec.state}${rec.error ? ` (${rec.error})` : ''}`);
    $('recording-targets').textContent = targets.join('; ') || 'none (kept locally)';
    $('recording-recorders').textContent = [...recorders, ...r.folders.map((f) => `folder ${f}`)].join('; ') || '–';
    const counts = `${r.written}/${r.uploaded}/${r.failed}/${r.dropped}/${r.queued}`;
    if (counts !== lastCounts) {
      lastCounts = counts;
      scheduleRefresh();
    }
  };
})();
