/** The few logger methods the server uses; a pino logger fits. */
export interface ServerLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** A logger that writes nothing: the default. */
export const silentLogger: ServerLogger = Object.freeze({ info() {}, warn() {}, error() {} });
