// How the legacy vifibnet.py's Python read its command line, for
// ./args.ts: argparse with the legacy's @file lines (convert_arg_line_to_args),
// and the Python built-ins its values went through: str.split() and strip()
// blanks, int(), float(), repr(), the text of an OSError. The argparse port
// (npm argparse) gives the parser; this module gives it Python's behaviour
// where the port differs, and argparse's print-and-exit as an exception.

import { ArgumentParser, ArgumentTypeError } from "argparse";
import { readFileSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { resolve } from "node:path";

/** A usage error or a help request: what argparse would print, and the exit status. */
export class ArgsError extends Error {
  constructor(
    readonly status: number,
    readonly stdout: string,
    readonly stderr: string,
    /** The message after "prog: error: ", or "" for --help. */
    readonly reason: string,
  ) {
    super(reason || `exit ${status}`);
    this.name = "ArgsError";
  }
}

/** Python's str.isspace() set: what str.split(), strip(), int() and float() treat as blanks. */
const PY_SPACE = "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const PY_SPLIT = new RegExp(`[${PY_SPACE}]+`);
const PY_RSTRIP = new RegExp(`[${PY_SPACE}]+$`);
const PY_STRIP = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, "g");

/** The legacy's short options, which a file may not use (README: "v 3" will not work). */
const SHORT_TO_LONG: Readonly<Record<string, string>> = { v: "verbose", l: "log", s: "state", i: "interface", w: "wireless", h: "help" };

/** Python's recursion limit ends a self-including file in the legacy; this ends it with a usage error. */
const MAX_FILE_DEPTH = 32;

/**
 * One line of an @file, as the legacy's convert_arg_line_to_args: '#' starts
 * a comment, a line starting with '@' names another file, any other line is
 * a long option with its leading dashes optional, then its values.
 */
export function convertArgLine(line: string): string[] {
  const text = line.split("#")[0]!.replace(PY_RSTRIP, "");
  if (!text) return [];
  if (text.startsWith("@")) return [text];
  return ("--" + text.replace(/^-+/, "")).split(PY_SPLIT).filter((w) => w !== "");
}

/** Python's str.splitlines() (after open()'s universal newlines, which it subsumes). */
function pySplitLines(text: string): string[] {
  const lines = text.split(/\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]/);
  if (lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/** glibc's strerror for the errors opening a file can give; Python prints these. */
const STRERROR: Readonly<Record<string, string>> = {
  EPERM: "Operation not permitted",
  ENOENT: "No such file or directory",
  EIO: "Input/output error",
  ENXIO: "No such device or address",
  EACCES: "Permission denied",
  EBUSY: "Device or resource busy",
  ENOTDIR: "Not a directory",
  EISDIR: "Is a directory",
  EMFILE: "Too many open files",
  ENFILE: "Too many open files in system",
  ENAMETOOLONG: "File name too long",
  ELOOP: "Too many levels of symbolic links",
  EOVERFLOW: "Value too large for defined data type",
};

/** str(OSError) in Python: "[Errno 2] No such file or directory: 'x'". */
function pyOsError(err: NodeJS.ErrnoException, filename: string): string {
  const code = err.code ?? "";
  const errno = (osConstants.errno as Record<string, number | undefined>)[code];
  const why = STRERROR[code] ?? err.message.replace(/^[A-Z]+: /, "").replace(/,.*$/, "");
  return errno === undefined ? `${why}: ${pyRepr(filename)}` : `[Errno ${errno}] ${why}: ${pyRepr(filename)}`;
}

/** Python's repr() of a str, for messages that quote user input as Python does. */
export function pyRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === quote || ch === "\\") out += "\\" + ch;
    else if (ch === "\t") out += "\\t";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch !== " " && /^[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]$/u.test(ch)) {
      if (cp < 0x100) out += "\\x" + cp.toString(16).padStart(2, "0");
      else if (cp < 0x10000) out += "\\u" + cp.toString(16).padStart(4, "0");
      else out += "\\U" + cp.toString(16).padStart(8, "0");
    } else out += ch;
  }
  return out + quote;
}

/**
 * Python's int() and float() take any Unicode decimal digit; Unicode keeps
 * each script's digits 0-9 contiguous and in order, so a digit's value is
 * its distance from the start of its run, modulo 10.
 */
function asciiDigits(s: string): string {
  if (/^[\x00-\x7f]*$/.test(s)) return s;
  const isNd = (c: number): boolean => /^\p{Nd}$/u.test(String.fromCodePoint(c));
  let out = "";
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp > 0x7f && isNd(cp)) {
      let start = cp;
      while (isNd(start - 1)) start--;
      out += String((cp - start) % 10);
    } else out += ch;
  }
  return out;
}

/** Python 3's int(str): blanks around, a sign, digits with single '_' between; at most 4300 digits. */
export function pyInt(text: string): number {
  const s = asciiDigits(text.replace(PY_STRIP, ""));
  if (!/^[+-]?[0-9](?:_?[0-9])*$/.test(s) || s.replace(/[^0-9]/g, "").length > 4300)
    throw new ArgumentTypeError(`invalid int value: ${pyRepr(text)}`);
  return Number(BigInt(s.replace(/_/g, "")));
}

/** Python 3's float(str), including 'nan' and 'inf' (the range checks reject them afterwards). */
export function pyFloat(text: string): number {
  const s = asciiDigits(text.replace(PY_STRIP, ""));
  const digits = "[0-9](?:_?[0-9])*";
  const decimal = new RegExp(`^[+-]?(?:(?:${digits})?\\.${digits}|${digits}\\.?)(?:[eE][+-]?${digits})?$`);
  const special = /^([+-]?)(inf|infinity|nan)$/i.exec(s);
  if (special) return special[2]!.toLowerCase() === "nan" ? NaN : special[1] === "-" ? -Infinity : Infinity;
  if (!decimal.test(s)) throw new ArgumentTypeError(`invalid float value: ${pyRepr(text)}`);
  return Number(s.replace(/_/g, ""));
}

/** How Python prints a float or an int in our messages. */
export function pyNum(n: number): string {
  if (Number.isNaN(n)) return "nan";
  if (!Number.isFinite(n)) return n > 0 ? "inf" : "-inf";
  return String(n);
}

export class LegacyParser extends ArgumentParser {
  private out = "";
  private err = "";
  private depth = 0;

  constructor(prog: string, private readonly cwd: string, text: { description: string; epilog: string }) {
    super({ prog, fromfile_prefix_chars: "@", ...text });
  }

  override convert_arg_line_to_args(argLine: string): string[] {
    return convertArgLine(argLine);
  }

  /**
   * Replaces the port's: its errors are Node's ("ENOENT: no such file or
   * directory, open 'x'"), not Python's, and it re-reports a nested file's
   * error through its own catch. Also refuses short options, as the README says.
   */
  _read_args_from_files(argStrings: string[]): string[] {
    const out: string[] = [];
    for (const arg of argStrings) {
      if (!arg.startsWith("@")) {
        out.push(arg);
        continue;
      }
      const name = arg.slice(1);
      if (this.depth >= MAX_FILE_DEPTH) this.error(`${pyRepr(name)}: @file nesting deeper than ${MAX_FILE_DEPTH} (a file including itself?)`);
      if (name.includes("\0")) this.error(`${pyRepr(name)}: embedded null byte`); // Python: ValueError
      let data: Buffer;
      try {
        if (name === "") throw Object.assign(new Error("ENOENT"), { code: "ENOENT" }); // resolve("") would be the directory
        data = readFileSync(resolve(this.cwd, name));
      } catch (e) {
        this.error(pyOsError(e as NodeJS.ErrnoException, name));
      }
      let text: string;
      try {
        // Python 3 decodes strictly (a traceback on bad bytes). TextDecoder also drops a BOM,
        // which Python would glue to the first option, an error there anyway.
        text = new TextDecoder("utf-8", { fatal: true }).decode(data);
      } catch {
        this.error(`${pyRepr(name)}: not UTF-8 text`);
      }
      const args: string[] = [];
      for (const [n, line] of pySplitLines(text).entries()) {
        const words = convertArgLine(line);
        const option = words[0]?.startsWith("--") ? words[0].slice(2).split("=")[0]! : "";
        const long = SHORT_TO_LONG[option];
        if (long !== undefined)
          this.error(`${pyRepr(name)}, line ${n + 1}: only long options are allowed in a file: '${long}', not '${option}'`);
        args.push(...words);
      }
      this.depth++;
      try {
        out.push(...this._read_args_from_files(args));
      } finally {
        this.depth--;
      }
    }
    return out;
  }

  /** Captures what argparse prints (help, usage), so that nothing is written before exit. */
  _print_message(message: string, file?: NodeJS.WritableStream): void {
    if (!message) return;
    if (file === process.stderr) this.err += message;
    else this.out += message;
  }

  override exit(status = 0, message?: string): never {
    if (message) this.err += message;
    throw new ArgsError(status, this.out, this.err, "");
  }

  override error(message: string | Error): never {
    const reason = typeof message === "string" ? message : message.message;
    this.err += this.format_usage() + `${this.prog}: error: ${reason}\n`;
    throw new ArgsError(2, this.out, this.err, reason);
  }

  declare prog: string;
}
