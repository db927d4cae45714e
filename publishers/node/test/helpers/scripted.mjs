// A tiny HTTP server that records every request it gets (headers and body
// bytes) and answers from a script. For the few checks that must see what
// the SDK sends on the wire; everything else is tested against the gateway.

import http from 'node:http';

/**
 * @typedef {object} Recorded
 * @property {Record<string, string | string[] | undefined>} headers
 * @property {Buffer} body
 */

/**
 * @typedef {object} Answer
 * @property {number} status
 * @property {object} [json] the body, sent as JSON
 */

export class ScriptedServer {
  /**
   * @param {(index: number, request: Recorded) => Answer | Promise<Answer>} answer
   */
  static async start(answer) {
    const server = new ScriptedServer(answer);
    await new Promise((ready) => server.server.listen(0, '127.0.0.1', ready));
    return server;
  }

  constructor(answer) {
    /** @type {Recorded[]} */
    this.requests = [];
    this.waiters = [];
    this.server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (chunk) => chunks.push(chunk));
      req.on('end', async () => {
        const recorded = { headers: req.headers, body: Buffer.concat(chunks) };
        const index = this.requests.length;
        this.requests.push(recorded);
        this.waiters = this.waiters.filter(([count, wake]) => (this.requests.length >= count ? (wake(), false) : true));
        const { status, json } = await answer(index, recorded);
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(json ?? {}));
      });
    });
  }

  get url() {
    return `http://127.0.0.1:${this.server.address().port}`;
  }

  /** Resolves once `count` requests have arrived. */
  received(count) {
    if (this.requests.length >= count) return Promise.resolve();
    return new Promise((wake) => this.waiters.push([count, wake]));
  }

  close() {
    this.server.closeAllConnections();
    return new Promise((done) => this.server.close(done));
  }
}
