// The log files the daemon writes for its children (SPEC section 6: babeld's,
// each OpenVPN server's and each client tunnel's, in --log). The children
// write to pipes and the daemon to the files, so that SIGHUP can reopen them
// after logrotate moved them away: OpenVPN cannot reopen its own log without
// restarting its tunnels.

import { closeSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";

export class LogFile {
  private fd: number;

  /** Opens (appends to, creates) `path`; throws with the reason when it cannot. */
  constructor(readonly path: string) {
    this.fd = LogFile.openFd(path);
  }

  private static openFd(path: string): number {
    try {
      return openSync(path, "a", 0o644);
    } catch (e) {
      throw new Error(`cannot open the log file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }

  /** Appends; a full or failing disk loses the chunk rather than the daemon. */
  write(chunk: Buffer): void {
    if (this.fd < 0) return;
    try {
      writeSync(this.fd, chunk);
    } catch {
      // nothing better to do with a log line that cannot be written
    }
  }

  /** Opens `path` again (a new file if it was moved away); on failure keeps writing to the old one and throws. */
  reopen(): void {
    const fd = LogFile.openFd(this.path);
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = fd;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

/** The log files open now, all in one directory, so that they can all be reopened. */
export class LogFiles {
  private readonly files = new Set<LogFile>();

  constructor(readonly dir: string) {}

  open(name: string): LogFile {
    const f = new LogFile(join(this.dir, name));
    this.files.add(f);
    return f;
  }

  close(f: LogFile): void {
    f.close();
    this.files.delete(f);
  }

  /** Reopens every open file; returns how many, and the errors of those that could not be. */
  reopenAll(): { reopened: number; errors: string[] } {
    let reopened = 0;
    const errors: string[] = [];
    for (const f of this.files) {
      try {
        f.reopen();
        reopened++;
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
    return { reopened, errors };
  }

  closeAll(): void {
    for (const f of this.files) f.close();
    this.files.clear();
  }
}
