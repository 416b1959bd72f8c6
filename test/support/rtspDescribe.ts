import { connect } from 'node:net';

/** What a raw DESCRIBE got: the status, every header (lower-case names; WWW-Authenticate may repeat), the challenges. */
export interface RawDescribe {
  readonly status: number;
  readonly headers: Array<[string, string]>;
  readonly challenges: string[];
}

/** One raw RTSP DESCRIBE on loopback, with an Authorization header when given; rejects after 5 s without an answer. */
export async function describeRaw(port: number, path: string, authorization?: string): Promise<RawDescribe> {
  const socket = connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  try {
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    socket.write(`DESCRIBE rtsp://127.0.0.1:${port}${path} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n${authorization ? `Authorization: ${authorization}\r\n` : ''}\r\n`);
    let timer: NodeJS.Timeout | undefined;
    const head = await new Promise<string>((resolve, reject) => {
      socket.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        const text = Buffer.concat(chunks).toString('latin1');
        const end = text.indexOf('\r\n\r\n');
        if (end >= 0) resolve(text.slice(0, end));
      });
      socket.once('error', reject);
      timer = setTimeout(() => reject(new Error('no RTSP answer')), 5000);
    }).finally(() => clearTimeout(timer));
    const [status, ...lines] = head.split('\r\n');
    const headers = lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()] as [string, string]);
    return {
      status: Number(/^RTSP\/1\.0 (\d{3})/.exec(status!)?.[1]),
      headers,
      challenges: headers.filter(([name]) => name === 'www-authenticate').map(([, value]) => value),
    };
  } finally {
    socket.destroy();
  }
}

/** `Authorization: Basic` for a user and password. */
export const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
