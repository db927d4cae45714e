'use strict';

// pino.transport({ target: '@datashop/logs-sse-publisher/pino-transport', options })
module.exports = require('./lib/pino').pinoTransport;
