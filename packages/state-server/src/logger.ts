/** The few logger methods the server uses; a pino logger fits. */
export interface ServerLogger {
  /** Per-stream lines (opened, closed); optional, so a logger without a debug level still fits. */
  debug?(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** A logger that writes nothing: the default. */
export const silentLogger: ServerLogger = Object.freeze({
  debug() {},
  info() {},
  warn() {},
  error() {},
});
