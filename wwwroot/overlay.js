// Boxes of the module's analyzers drawn live over the WebRTC video (webrtc.html loads this before its own script).
//
// The module sends every analysed frame to viewers on the signalling socket, beside the seed's {sdp} and {ice}:
//   {"analysis": {"analyzer": "people", "camera": "people", "timestamp": "...", "width": 320, "height": 180,
//                 "detections": [{"class": "person", "score": 0.84, "box": {"x": 0.01, "y": 0.03, "width": 0.96, "height": 0.93}}]}}
// Boxes are normalised to the picture, so they are drawn onto the video's own area inside the element (the element
// letterboxes the picture: object-fit contain). `?analyzer=people` draws only that analyzer's results; `?overlay=off`
// draws nothing. What tests and curious users can read: window.overlay.results, .boxesDrawn, .last.
//
// The page's script owns the socket; this file hears its messages by wrapping the WebSocket constructor for /ws, so
// the page itself needs no change beyond loading this file and holding a <canvas id="overlay">.
(() => {
  const params = new URLSearchParams(location.search);
  const only = params.get('analyzer');
  const enabled = params.get('overlay') !== 'off';
  /** A result is drawn until a newer one of its analyzer comes, or for this long (the analyzer went away). */
  const STALE_MS = 2000;
  const COLOURS = ['#ffcc00', '#00e5ff', '#ff4081', '#76ff03', '#ff9100', '#b388ff'];
  const overlay = { results: 0, boxesDrawn: 0, last: null };
  window.overlay = overlay;
  /** The newest result per analyzer, with when it came. */
  const latest = new Map();

  const Native = window.WebSocket;
  class ObservedWebSocket extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      if (new URL(String(url), location.href).pathname === '/ws') this.addEventListener('message', onMessage);
    }
  }
  window.WebSocket = ObservedWebSocket;

  function onMessage(event) {
    if (typeof event.data !== 'string' || !event.data.startsWith('{"analysis"')) return;
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    const result = message.analysis;
    if (!result || !Array.isArray(result.detections) || (only && result.analyzer !== only)) return;
    overlay.results++;
    overlay.last = result;
    latest.set(result.analyzer, { result, at: performance.now() });
    if (enabled) requestAnimationFrame(draw);
  }

  /** Where the picture is inside the video element (object-fit: contain centres it), in CSS pixels. */
  function pictureRect(video) {
    const w = video.clientWidth;
    const h = video.clientHeight;
    const vw = video.videoWidth || w;
    const vh = video.videoHeight || h;
    const scale = Math.min(w / vw, h / vh);
    return { x: (w - vw * scale) / 2, y: (h - vh * scale) / 2, width: vw * scale, height: vh * scale };
  }

  function colourOf(name) {
    let hash = 0;
    for (const c of name) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
    return COLOURS[hash % COLOURS.length];
  }

  function draw() {
    const video = document.getElementById('video');
    const canvas = document.getElementById('overlay');
    if (!video || !canvas) return;
    const ratio = window.devicePixelRatio || 1;
    const width = video.clientWidth;
    const height = video.clientHeight;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const picture = pictureRect(video);
    const now = performance.now();
    ctx.lineWidth = 2;
    ctx.font = '600 13px system-ui, sans-serif';
    ctx.textBaseline = 'top';
    for (const [name, { result, at }] of latest) {
      if (now - at > STALE_MS) {
        latest.delete(name);
        continue;
      }
      const colour = colourOf(name);
      for (const d of result.detections) {
        const x = picture.x + d.box.x * picture.width;
        const y = picture.y + d.box.y * picture.height;
        const w = d.box.width * picture.width;
        const h = d.box.height * picture.height;
        ctx.strokeStyle = colour;
        ctx.strokeRect(x, y, w, h);
        const label = `${d.class} ${Math.round(d.score * 100)}%`;
        const textWidth = ctx.measureText(label).width + 8;
        const labelY = y >= 18 ? y - 18 : y;
        ctx.fillStyle = colour;
        ctx.fillRect(x, labelY, textWidth, 18);
        ctx.fillStyle = '#000';
        ctx.fillText(label, x + 4, labelY + 2);
        overlay.boxesDrawn++;
      }
    }
  }

  // Stale boxes go even when no result comes any more.
  setInterval(() => enabled && latest.size > 0 && requestAnimationFrame(draw), 500);

  // The canvas lies over the video: both in one positioned box the width of the video.
  window.addEventListener('DOMContentLoaded', () => {
    const video = document.getElementById('video');
    const canvas = document.getElementById('overlay');
    if (!video || !canvas) return;
    const frame = document.createElement('div');
    frame.style.cssText = 'position: relative; width: 100%; max-width: 960px;';
    video.replaceWith(frame);
    frame.append(video, canvas);
    canvas.style.cssText = 'position: absolute; left: 0; top: 0; width: 100%; height: 100%; pointer-events: none;';
    window.addEventListener('resize', () => requestAnimationFrame(draw));
  });
})();
