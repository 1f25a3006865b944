// Where the project is, for the harness and the tests: its root (dist/harness
// is two levels below it) and its programs in bin/.

import { join } from "node:path";

export const ROOT = join(__dirname, "..", "..");
export const BIN = (name: string): string => join(ROOT, "bin", name);
/** The Node binary running us, for the programs in bin/. */
export const NODE = process.execPath;
