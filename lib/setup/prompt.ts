// Questions on standard input, answered from a terminal or a pipe.
//
// Lines are queued as they arrive: with a pipe, both answers may come in one
// chunk before the second question is asked, and readline drops lines nobody
// listens to. `terminal: false` leaves Ctrl-C to the terminal driver, so it
// raises a real SIGINT that the caller's handler turns into a clean exit.

import { createInterface, Interface } from "node:readline";
import type { Readable, Writable } from "node:stream";

/** Standard input ended before an answer came. */
export class NoAnswerError extends Error {
  override name = "NoAnswerError";
}

export class Prompter {
  private rl: Interface | undefined;
  private readonly lines: string[] = [];
  private ended = false;
  private wake: (() => void) | undefined;

  constructor(private readonly input: Readable & { isTTY?: boolean }, private readonly output: Writable) {}

  private start(): Interface {
    if (this.rl) return this.rl;
    const rl = createInterface({ input: this.input, terminal: false, crlfDelay: Infinity });
    rl.on("line", (line) => {
      this.lines.push(line);
      this.wake?.();
    });
    rl.on("close", () => {
      this.ended = true;
      this.wake?.();
    });
    this.rl = rl;
    return rl;
  }

  private async nextLine(): Promise<string | undefined> {
    this.start();
    while (this.lines.length === 0 && !this.ended) await new Promise<void>((resolve) => (this.wake = resolve));
    this.wake = undefined;
    return this.lines.shift();
  }

  /** True while a question waits for its answer. */
  get asking(): boolean {
    return this.wake !== undefined;
  }

  /** Writes `question` and resolves with the first non-empty answer, trimmed. */
  async ask(question: string): Promise<string> {
    for (;;) {
      this.output.write(question);
      const line = await this.nextLine();
      // A piped answer is not echoed: end the prompt's line so output stays readable.
      if (!this.input.isTTY) this.output.write("\n");
      if (line === undefined) throw new NoAnswerError(`no answer to "${question.replace(/\s*:\s*$/, "")}": standard input ended`);
      const answer = line.trim();
      if (answer !== "") return answer;
    }
  }

  /** Stops reading, so standard input does not keep the process alive. */
  close(): void {
    if (!this.rl) return;
    this.rl.close();
    this.input.pause();
  }
}
