// File helpers with the guarantees users rely on: a file is either absent or
// complete (written to a temporary name, then renamed), never half-written.

import { closeSync, fchmodSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmdirSync, statSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";

/** Reads a file a user named with a flag; the error names the flag and the reason. */
export function readUserFile(flag: string, path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === "ENOENT" ? "no such file" : err.code === "EACCES" ? "permission denied" : err.message;
    throw new Error(`cannot read ${flag} ${path}: ${why}`);
  }
}

/** Writes `data` to `path` atomically, with the given mode from the first byte. */
export function writeFileAtomic(path: string, data: string | Buffer, mode = 0o644): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(tmp, "wx", mode);
  try {
    fchmodSync(fd, mode); // exactly `mode`, whatever the umask
    writeSync(fd, typeof data === "string" ? Buffer.from(data) : data);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    unlinkSync(tmp);
    throw e;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (e) {
    unlinkSync(tmp);
    throw e;
  }
}

/**
 * Replaces `path` with `data`, keeping what it held as `path.old`: each of
 * the two written atomically (the old copy first), with the file's mode.
 */
export function replaceKeepingOld(path: string, data: string | Buffer): void {
  const mode = statSync(path).mode & 0o777;
  writeFileAtomic(`${path}.old`, readFileSync(path), mode);
  writeFileAtomic(path, data, mode);
}

/** What an errno means to someone choosing a directory. */
export function fsProblem(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  switch (err.code) {
    case "EACCES": case "EPERM": return "permission denied";
    case "EROFS": return "read-only file system";
    case "ENOSPC": return "no space left on the device";
    case "ENOTDIR": return "a part of the path is not a directory";
    case "ENOENT": return "the file system does not allow it there";
    default: return err.message;
  }
}

/**
 * Creates `dir` and any missing parents, one at a time; returns the ones it
 * created, deepest first. Node's `mkdirSync(dir, { recursive: true })` loops
 * forever where mkdir answers ENOENT for an existing parent (/proc, /sys):
 * here any refusal is an Error with a one-line message naming the directory.
 */
export function makeDirectory(dir: string, mode = 0o755): string[] {
  const missing: string[] = [];
  for (let d = resolve(dir); ; d = dirname(d)) {
    let isDir: boolean;
    try {
      isDir = statSync(d).isDirectory();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT" || d === dirname(d)) throw new Error(`cannot create directory ${dir}: ${fsProblem(e)}`);
      missing.push(d);
      continue;
    }
    if (!isDir) throw new Error(`cannot use ${d === resolve(dir) ? dir : d}: not a directory`);
    break;
  }
  const created: string[] = [];
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d, { mode });
      created.unshift(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") continue; // made meanwhile; checked below
      removeEmptyDirectories(created);
      throw new Error(`cannot create directory ${dir}: ${fsProblem(e)}`);
    }
  }
  if (!statSync(dir).isDirectory()) throw new Error(`cannot use ${dir}: not a directory`);
  return created;
}

/** Removes directories, deepest first, while they are empty (what makeDirectory made, after a failure). */
export function removeEmptyDirectories(dirs: readonly string[]): void {
  for (const d of dirs) {
    try {
      rmdirSync(d); // fails, harmlessly, unless empty
    } catch {
      return;
    }
  }
}
