// Setup's files appear all at once, or not at all.
//
// Every file is first written complete (and fsynced) under a temporary name
// in the target directory; only when all of them are ready are they renamed
// into place, in the legacy order, with no await in between (so a signal
// cannot fall between two renames). A failure or Ctrl-C before that point
// leaves the directory as it was: the key never exists without its
// certificate. A crash (power loss, SIGKILL) between two renames can leave a
// new cert.key beside an older cert.crt; the next run replaces both, and
// sweeps the temporary files a killed run left behind.

import { closeSync, fsyncSync, linkSync, openSync, readdirSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";

/** "replace" overwrites an existing file; "create" never does (dh2048.pem, a new peers.db). */
export type CommitMode = "replace" | "create";

interface Staged {
  name: string;
  tmp: string;
  how: CommitMode;
}

export interface CommitResult {
  /** Files moved into place, in order. */
  written: string[];
  /** "create" files that existed already and were kept. */
  kept: string[];
}

/** The names setup writes, in the legacy order, plus the previous CA's and certificate's backups and the node's configuration. */
export const SETUP_FILES = ["ca.pem.old", "ca.pem", "peers.db", "cert.key", "cert.crt.old", "cert.crt", "dh2048.pem", "vifibnet.conf"] as const;
const PROBE = "vifibnet-setup";
const TEMP = new RegExp(`^\\.(${[...SETUP_FILES, PROBE].map((n) => n.replace(/\./g, "\\.")).join("|")})\\.(\\d+)\\.tmp(?:-journal|-wal|-shm)?$`);

function isAlive(pid: number): boolean {
  if (pid === process.pid) return false; // our own pid: left by an earlier process that had it
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    // Some filesystems refuse to fsync a directory; the renames are done regardless.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Removes temporary files of setup runs that are no longer running; returns their names. */
export function sweepStaleTemps(dir: string): string[] {
  const gone: string[] = [];
  for (const name of readdirSync(dir)) {
    const m = TEMP.exec(name);
    if (m && !isAlive(Number(m[2]))) {
      unlinkQuietly(join(dir, name));
      gone.push(name);
    }
  }
  return gone;
}

/** Throws (EACCES, EROFS, ENOSPC...) unless a file can be created in `dir`. */
export function probeWritable(dir: string): void {
  const path = join(dir, `.${PROBE}.${process.pid}.tmp`);
  closeSync(openSync(path, "wx", 0o600));
  unlinkSync(path);
}

export class Staging {
  private staged: Staged[] = [];

  constructor(readonly dir: string) {}

  /** Where `name` is written before the commit. */
  tempPath(name: string): string {
    return join(this.dir, `.${name}.${process.pid}.tmp`);
  }

  /**
   * Registers the temporary name of `name` and returns it, for a writer that
   * creates the file itself (SQLite); abort() removes it from now on.
   */
  reserve(name: string, how: CommitMode = "replace"): string {
    const tmp = this.tempPath(name);
    this.staged.push({ name, tmp, how });
    return tmp;
  }

  /** Flushes a reserved file to disk once its writer has closed it. */
  seal(name: string): void {
    const fd = openSync(this.tempPath(name), "r+");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** Writes `data` complete under the temporary name of `name`, mode set from the first byte. */
  write(name: string, data: string | Buffer, mode: number, how: CommitMode = "replace"): void {
    const tmp = this.reserve(name, how); // registered first: abort() removes it even if the write fails
    const fd = openSync(tmp, "wx", mode);
    try {
      const buf = typeof data === "string" ? Buffer.from(data) : data;
      for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** Moves every staged file into place, in staging order. Synchronous on purpose (see above). */
  commit(): CommitResult {
    const result: CommitResult = { written: [], kept: [] };
    while (this.staged.length > 0) {
      const s = this.staged[0]!;
      const final = join(this.dir, s.name);
      if (s.how === "replace") {
        renameSync(s.tmp, final);
        result.written.push(s.name);
      } else {
        // link() fails if the name exists: never overwrites, even one created meanwhile.
        try {
          linkSync(s.tmp, final);
          result.written.push(s.name);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
          result.kept.push(s.name);
        }
        unlinkSync(s.tmp);
      }
      this.staged.shift();
    }
    fsyncDir(this.dir);
    return result;
  }

  /** Removes every temporary file not yet committed. Safe to call at any time, more than once. */
  abort(): void {
    for (const s of this.staged.splice(0)) {
      for (const suffix of ["", "-journal", "-wal", "-shm"]) unlinkQuietly(s.tmp + suffix);
    }
  }
}
