import type { PinoStream, PublisherOptions } from './types';

/** Options of the pino worker-thread transport: the publisher options plus `levelLabels`. */
declare function pinoTransport(options: PublisherOptions & { levelLabels?: boolean }): PinoStream;
export = pinoTransport;
