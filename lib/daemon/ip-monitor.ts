// The kernel's reports of link and address changes, for the address keeper
// (./address-keeper.ts): `ip -o monitor link address`, supervised like the
// other children (./supervisor.ts), each line it prints a report. Node
// cannot open a netlink socket itself; this child sleeps in the kernel until
// something changes, so an idle node is not woken. What changed is not
// parsed: the keeper looks at everything, which costs a read of /proc.

import type { Logger } from "../utils/log";
import type { Timers } from "../utils/timers";
import type { Watch } from "./address-keeper";
import { Child } from "./children";
import { ChildStatus, Supervisor } from "./supervisor";

export class IpMonitor implements Watch {
  private supervisor: Supervisor | null = null;

  constructor(private readonly ip: string, private readonly deps: { timers: Timers; now: () => number; logger: Logger }) {}

  start(changed: () => void): void {
    this.supervisor = new Supervisor("ip monitor", () => {
      const child = new Child("ip monitor", this.ip, ["-o", "monitor", "link", "address"], { log: { write: () => changed() } });
      changed(); // what changed while it was not watching
      return child;
    }, this.deps);
    this.supervisor.start();
  }

  async stop(): Promise<void> {
    await this.supervisor?.stop();
  }

  status(): ChildStatus | null {
    return this.supervisor?.status() ?? null;
  }
}
