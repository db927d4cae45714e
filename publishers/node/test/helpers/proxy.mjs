// A TCP proxy between the SDK and the real gateway that can lose answers:
// each request is relayed to the gateway whole, and for the ones chosen by
// `cut(n)` the connection is closed as the gateway's answer starts coming
// back, so the gateway has processed the request but the SDK never hears.
// The gateway is not imitated; the proxy only forwards or hangs up.

import net from 'node:net';

/**
 * @typedef {object} CutRequest
 * @property {number} index which request through the proxy it was (from 0)
 * @property {string | null} key its Idempotency-Key header
 * @property {number} items how many logs its JSON array held
 */

/** What the head and body of one buffered HTTP request say. */
function describe(raw) {
  const text = raw.toString('utf8');
  const split = text.indexOf('\r\n\r\n');
  const head = split < 0 ? text : text.slice(0, split);
  const key = /^idempotency-key:\s*(.*)$/im.exec(head);
  let items = -1;
  try {
    items = JSON.parse(text.slice(split + 4)).length;
  } catch {
    // a body split over several requests would be a bug in the test
  }
  return { key: key ? key[1].trim() : null, items };
}

export class CuttingProxy {
  /**
   * @param {number} upstreamPort the gateway's port
   * @param {(index: number) => boolean} cut whether to lose the answer of request `index`
   */
  static async start(upstreamPort, cut) {
    const proxy = new CuttingProxy(upstreamPort, cut);
    await new Promise((ready) => proxy.server.listen(0, '127.0.0.1', ready));
    return proxy;
  }

  constructor(upstreamPort, cut) {
    this.requests = 0;
    /** @type {CutRequest[]} */
    this.cuts = [];
    this.sockets = new Set();
    this.server = net.createServer((client) => {
      const upstream = net.connect(upstreamPort, '127.0.0.1');
      this.sockets.add(client).add(upstream);
      let request = []; // bytes of the request whose answer has not started
      const hangUp = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('data', (chunk) => {
        request.push(chunk);
        upstream.write(chunk);
      });
      upstream.on('data', (chunk) => {
        // The SDK sends one request per connection at a time and waits for
        // its answer, so the first answer bytes after request bytes belong
        // to that request.
        if (request.length > 0) {
          const index = this.requests;
          this.requests += 1;
          const raw = Buffer.concat(request);
          request = [];
          if (cut(index)) {
            this.cuts.push({ index, ...describe(raw) });
            hangUp();
            return;
          }
        }
        client.write(chunk);
      });
      client.on('end', () => upstream.end());
      upstream.on('end', () => client.end());
      for (const socket of [client, upstream]) {
        socket.on('error', hangUp);
        socket.on('close', () => {
          this.sockets.delete(socket);
          hangUp();
        });
      }
    });
  }

  get url() {
    return `http://127.0.0.1:${this.server.address().port}`;
  }

  close() {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((done) => this.server.close(done));
  }
}
