// Man pages from one source: the hand-written part in docs/man/NAME.SECTION.md
// (markdown, with {{synopsis}} and {{options}} where the generated parts go)
// and the options from the program's own --help (argparse's layout), so a
// flag added to a parser is in its page at the next build. go-md2man (a
// Debian package) turns the markdown into roff.

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

export interface HelpEntry {
  /** As argparse prints it: "-s DIR, --state DIR", "port". */
  invocation: string;
  help: string;
}

export interface HelpSection {
  title: string;
  entries: HelpEntry[];
}

export interface ParsedHelp {
  /** The usage, on one line, without "usage: ". */
  usage: string;
  /** argparse's description, paragraph by paragraph (the page of a program has its own; a command's is used). */
  description: string[];
  sections: HelpSection[];
  /** Paragraphs after the options (argparse's epilog). */
  epilog: string[];
}

/** What --help prints, one line per entry (COLUMNS wide enough) but wrapped or not, it parses the same. */
export function parseArgparseHelp(text: string): ParsedHelp {
  const blocks = text.replace(/\r/g, "").split(/\n\s*\n/).map((b) => b.replace(/\s+$/, "")).filter((b) => b.trim() !== "");
  const first = blocks.shift() ?? "";
  if (!first.startsWith("usage: ")) throw new Error(`not argparse's --help (no "usage: " first): ${first.slice(0, 80)}`);
  const usage = first.slice("usage: ".length).replace(/\s+/g, " ").trim();
  const sections: HelpSection[] = [];
  const epilog: string[] = [];
  const description: string[] = [];
  for (const block of blocks) {
    const lines = block.split("\n");
    if (/^\S.*:$/.test(lines[0]!) && lines.length > 1 && /^ {2}\S/.test(lines[1]!)) {
      const section: HelpSection = { title: lines[0]!.slice(0, -1), entries: [] };
      for (const line of lines.slice(1)) {
        if (/^ {2}\S/.test(line)) {
          const [invocation, help] = line.trim().split(/\s{2,}(.*)/s);
          section.entries.push({ invocation: invocation!, help: help ?? "" });
        } else if (section.entries.length > 0) {
          const last = section.entries[section.entries.length - 1]!;
          last.help = `${last.help} ${line.trim()}`.trim();
        }
      }
      sections.push(section);
    } else {
      (sections.length > 0 ? epilog : description).push(lines.map((l) => l.trim()).join(" "));
    }
  }
  return { usage, description, sections, epilog };
}

/** Markdown text as is, its special characters escaped. */
function md(text: string): string {
  return text.replace(/([\\`*_[\]<>#|])/g, "\\$1");
}

/** "-s DIR, --state DIR" → "**-s** *DIR*, **--state** *DIR*": options bold, values italic. */
function invocationMarkdown(invocation: string): string {
  return invocation.split(", ").map((form) =>
    form.split(" ").map((w, i) => (i === 0 ? `**${md(w)}**` : `*${md(w)}*`)).join(" ")).join(", ");
}

export function synopsisMarkdown(usage: string): string {
  return usage.split(" ").map((w, i) => {
    if (i === 0) return `**${md(w)}**`;
    const m = /^([[(]*)(.*?)([\])]*)$/.exec(w)!;
    const [, open, core, close] = m;
    if (core === "" || core === "|" || core === "...") return md(w);
    const body = core!.startsWith("-") || core!.startsWith("{") ? `**${md(core!)}**` : `*${md(core!)}*`;
    return md(open!) + body + md(close!);
  }).join(" ");
}

function entriesMarkdown(entries: readonly HelpEntry[]): string[] {
  return entries.flatMap((e) => [invocationMarkdown(e.invocation), `: ${md(e.help)}`, ""]);
}

export function optionsMarkdown(help: ParsedHelp): string {
  const out = ["# OPTIONS", ""];
  for (const s of help.sections) out.push(`## ${md(s.title.replace(/^./, (c) => c.toUpperCase()))}`, "", ...entriesMarkdown(s.entries));
  for (const p of help.epilog) out.push(md(p), "");
  return out.join("\n");
}

/** A program's commands (`PROGRAM COMMAND ...`), each from its own --help: synopsis, description, options. */
export function commandsMarkdown(commands: ReadonlyArray<{ name: string; help: ParsedHelp }>): string {
  const out = ["# COMMANDS", ""];
  for (const { name, help } of commands) {
    // The command word is a literal, as the program's name: bold.
    const synopsis = synopsisMarkdown(help.usage).replace(`*${md(name)}*`, `**${md(name)}**`);
    out.push(`## ${md(name)}`, "", synopsis, "", ...help.description.flatMap((p) => [md(p), ""]));
    for (const s of help.sections) out.push(...entriesMarkdown(s.entries.filter((e) => e.invocation !== "-h, --help")));
  }
  return out.join("\n");
}

export interface PageMeta {
  name: string;
  section: number;
  version: string;
  /** YYYY-MM-DD */
  date: string;
}

/** The page's markdown: the hand-written source with the generated parts in place ({{commands}} when the program has commands). */
export function pageMarkdown(source: string, help: ParsedHelp, commands: ReadonlyArray<{ name: string; help: ParsedHelp }> = []): string {
  const marks = ["{{synopsis}}", "{{options}}", ...(commands.length > 0 ? ["{{commands}}"] : [])];
  for (const mark of marks)
    if (!source.includes(mark)) throw new Error(`the man page source has no ${mark}`);
  return source.replace("{{synopsis}}", synopsisMarkdown(help.usage)).replace("{{options}}", optionsMarkdown(help))
    .replace("{{commands}}", commands.length > 0 ? commandsMarkdown(commands) : "");
}

/** roff from markdown by go-md2man, with our .TH line and real minus signs (copy-pasteable options). */
export function toRoff(markdown: string, meta: PageMeta): string {
  const r = spawnSync("go-md2man", [], { input: markdown, encoding: "utf8" });
  if (r.error || r.status !== 0) throw new Error(`go-md2man failed: ${r.error?.message ?? r.stderr}`);
  const manual = meta.section === 8 ? "System Administration" : "User Commands";
  const th = `.TH "${meta.name.toUpperCase()}" "${meta.section}" "${meta.date}" "vifibnet ${meta.version}" "${manual}"`;
  // go-md2man makes a page's first "# HEADING" its title: here it is a section like the others.
  const body = r.stdout.replace(/^\.TH (.*)$/m, ".SH $1").split("\n")
    .map((line) => (line.startsWith(".") ? line : line.replace(/(?<!\\)-/g, "\\-")));
  return [th, ...body].join("\n");
}

/** What `program ARGS... --help` prints, parsed. */
function helpOf(program: string, args: readonly string[]): ParsedHelp {
  const r = spawnSync(process.execPath, [program, ...args, "--help"], { encoding: "utf8", env: { ...process.env, COLUMNS: "1000" }, timeout: 30_000 });
  if (r.status !== 0) throw new Error(`${program} ${args.join(" ")} --help failed: ${r.stderr}`);
  return parseArgparseHelp(r.stdout);
}

/** The roff page of `program` (a path run with node), from `sourcePath`; `commands` are the first words it takes as commands. */
export function manPage(program: string, sourcePath: string, meta: PageMeta, commands: readonly string[] = []): string {
  const helps = commands.map((name) => ({ name, help: helpOf(program, [name]) }));
  return toRoff(pageMarkdown(readFileSync(sourcePath, "utf8"), helpOf(program, []), helps), meta);
}
