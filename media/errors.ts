/** A WebRTC peer that cannot be built or was used out of order (bad launch line, an answer nobody asked for, ...). */
export class WebRtcPeerError extends Error {
  override readonly name = 'WebRtcPeerError';
}
