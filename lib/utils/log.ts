// Levelled logging, as the legacy `-v LEVEL` (0-5): a message is written when
// its level is at most the configured verbosity. Level 0 is always shown.

export type LogLevel = 0 | 1 | 2 | 3 | 4 | 5;

export interface Logger {
  readonly verbose: number;
  log(level: LogLevel, message: string): void;
  /** Something went wrong but the program goes on (always shown). */
  warn(message: string): void;
}

export type Sink = (line: string) => void;

const stderrSink: Sink = (line) => {
  process.stderr.write(line + "\n");
};

export function createLogger(verbose: number, sink: Sink = stderrSink): Logger {
  const stamp = (): string => new Date().toISOString().replace("T", " ").slice(0, 19);
  return {
    verbose,
    log(level, message) {
      if (level <= verbose) sink(`${stamp()} ${message}`);
    },
    warn(message) {
      sink(`${stamp()} WARNING: ${message}`);
    },
  };
}

/** A logger that drops everything, for tests and library callers. */
export const silentLogger: Logger = { verbose: 0, log() {}, warn() {} };
