// UNIX domain socket paths (babeld's control socket, the daemon's status socket).

/** The longest path of a UNIX socket (sun_path is 108 bytes, with its NUL). */
export const MAX_SOCKET_PATH = 107;

export function fitsSocketPath(path: string): boolean {
  return Buffer.byteLength(path) <= MAX_SOCKET_PATH;
}
