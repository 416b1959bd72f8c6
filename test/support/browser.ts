import { chromium, type Browser } from 'playwright-core';

/** Debian's chromium (installed by scripts/setup.sh); never a downloaded browser. */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Flags for headless chromium on a closed network, as root: no sandbox (root), no background traffic to
 * Google's hosts (refused here, many at a time), autoplay without a gesture for the players, and WebRTC host
 * candidates in the clear (not mDNS names GStreamer's ICE agent cannot resolve), loopback allowed.
 */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--allow-loopback-in-peer-connection',
];

/** `extraArgs`: e.g. `--ignore-certificate-errors-spki-list=<base64 SHA-256 of a test key's SPKI>` for HTTPS tests. */
export function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, ...extraArgs] });
}

/**
 * Page code, for the body of an async function run by `page.evaluate`, that leaves `pc`: an RTCPeerConnection with
 * a recvonly video transceiver, its offer set as the local description and ICE gathering complete (or `timeoutMs`
 * passed), so `pc.localDescription.sdp` is a non-trickle offer as a WHEP client sends it.
 */
export function gatheredRecvonlyOffer(timeoutMs?: number): string {
  return `const pc = new RTCPeerConnection();
      pc.addTransceiver('video', { direction: 'recvonly' });
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise((resolve) => {
        if (pc.iceGatheringState === 'complete') resolve();
        pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
        ${timeoutMs === undefined ? '' : `setTimeout(resolve, ${timeoutMs});`}
      });`;
}
