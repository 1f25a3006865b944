// The @FILE format of vifibnet-registry (whose legacy had none; the daemon
// keeps the legacy's own, lib/daemon/args.ts): words separated by blanks,
// any number per line, '#' starts a comment. A line "--db /var/lib/x.db"
// means the same in both formats.

export const ARG_FILE_HELP =
  "@FILE reads arguments from FILE: words separated by blanks, any number per line (no quoting); '#' starts a comment.";

export function argFileWords(line: string): string[] {
  return line.replace(/#.*/, "").split(/\s+/).filter((w) => w !== "");
}
