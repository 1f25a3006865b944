#!/usr/bin/env python3
"""Interop tests of setup.py (the launcher of bin/vifibnet-setup).

- against our registry (bin/vifibnet-registry, token mailed to a real SMTP
  sink), the files setup writes are read by pyOpenSSL, as the legacy
  tools read them: key, certificate, CA chain, DH parameters;
- against a model of the legacy Python registry (SimpleXMLRPCServer,
  pyOpenSSL signing with SHA-1 as the 2012 registry did), over IPv4 and IPv6:
  the client speaks only the legacy wire format.

pyOpenSSL may be missing from the interpreter running the tests (a pyenv
Python, say); the checks and the legacy model then run under the first
interpreter that has it (Debian's /usr/bin/python3 with python3-openssl).
This file is that helper too: `test_setup.py check DIR` and
`test_setup.py legacy-registry DIR FAMILY`.

Run: python3 -m unittest discover -s compat -p 'test_*.py'  (after npx tsc -p .)
"""
import json
import os
import queue
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.realpath(__file__))
ROOT = os.path.dirname(HERE)
SETUP = os.path.join(HERE, "setup.py")
NODE = shutil.which("node")
BOOT = ("0000000000000111", "198.51.100.7,1194,udp")
TIMEOUT = 60


def _has_openssl(python):
    try:
        return subprocess.run([python, "-c", "import OpenSSL"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _openssl_python():
    for candidate in (sys.executable, "/usr/bin/python3"):
        if candidate and os.path.exists(candidate) and _has_openssl(candidate):
            return candidate
    return None


OPENSSL_PY = _openssl_python()
BUILT = os.path.exists(os.path.join(ROOT, "dist", "lib", "setup", "main.js"))


RUNNING = set()  # every Process not yet stopped, for the SIGTERM handler below
TEMP_DIRS = []  # removed by the SIGTERM handler too


def make_temp_dir(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    TEMP_DIRS.append(d)
    return d


class Process:
    """A child process whose output lines are collected by threads."""

    def __init__(self, argv, **kw):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, **kw)
        RUNNING.add(self)
        self.lines = queue.Queue()
        self.out, self.err = [], []
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._read, args=(stream, sink), daemon=True).start()

    def _read(self, stream, sink):
        for line in iter(stream.readline, ""):
            sink.append(line)
            self.lines.put(line)

    def wait_line(self, pattern, timeout=TIMEOUT):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            m = re.search(pattern, line)
            if m:
                return m
        raise AssertionError("no line matching %r; stderr: %s" % (pattern, "".join(self.err)))

    def stop(self):
        RUNNING.discard(self)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass


def _terminate(signum, _frame):
    # A runner that times out sends SIGTERM: stop registries and sinks, not only ourselves.
    for p in list(RUNNING):
        p.stop()
    for d in TEMP_DIRS:
        shutil.rmtree(d, True)
    os._exit(128 + signum)


if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
    signal.signal(signal.SIGTERM, _terminate)


def run_setup(args, stdin_text=None):
    return subprocess.run([sys.executable, SETUP] + args, input=stdin_text if stdin_text is not None else "",
                          capture_output=True, text=True, timeout=TIMEOUT)


def snapshot(d):
    out = {}
    for name in sorted(os.listdir(d)):
        with open(os.path.join(d, name), "rb") as f:
            out[name] = (os.stat(os.path.join(d, name)).st_mode, f.read())
    return out


def pyopenssl_check(d):
    """Runs `check` under the interpreter with pyOpenSSL; returns its facts."""
    r = subprocess.run([OPENSSL_PY, os.path.realpath(__file__), "check", d], capture_output=True, text=True, timeout=TIMEOUT)
    if r.returncode != 0:
        raise AssertionError("pyOpenSSL check failed: " + r.stderr)
    return json.loads(r.stdout)


@unittest.skipUnless(NODE and BUILT, "needs node and a build (npx tsc -p .)")
@unittest.skipUnless(OPENSSL_PY, "needs pyOpenSSL (Debian: python3-openssl)")
class SetupInterop(unittest.TestCase):
    def workdir(self):
        d = make_temp_dir("vifibnet-compat-setup-")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def assert_files(self, d, facts, boot=True):
        self.assertEqual(sorted(os.listdir(d)), ["ca.pem", "cert.crt", "cert.key", "dh2048.pem", "peers.db"])
        self.assertEqual(os.stat(os.path.join(d, "cert.key")).st_mode & 0o777, 0o600)
        self.assertEqual(facts["key_type"], "RSA")
        self.assertGreaterEqual(facts["key_bits"], 2048)
        self.assertTrue(facts["key_check"])
        self.assertTrue(facts["cert_holds_key"])
        self.assertTrue(facts["verified_by_ca"], facts.get("verify_error"))
        self.assertTrue(facts["tls_context_ok"])
        self.assertTrue(facts["dh_ok"], facts.get("dh_error"))
        self.assertRegex(facts["subject"]["CN"], r"^\d+/16$")
        db = sqlite3.connect(os.path.join(d, "peers.db"))
        try:
            cols = [(r[1], r[2], r[3], r[4], r[5]) for r in db.execute("PRAGMA table_info(peers)")]
            self.assertEqual(cols, [("prefix", "TEXT", 0, None, 1), ("address", "TEXT", 1, None, 0),
                                    ("used", "INTEGER", 1, "0", 0), ("date", "INTEGER", 0, "strftime('%s','now')", 0)])
            self.assertEqual(db.execute("SELECT sql FROM sqlite_master WHERE name='_peers_used'").fetchone()[0],
                             "CREATE INDEX _peers_used ON peers(used)")
            rows = db.execute("SELECT prefix, address, used FROM peers").fetchall()
            self.assertEqual(rows, [BOOT + (0,)] if boot else [])
        finally:
            db.close()


class AgainstOurRegistry(SetupInterop):
    @classmethod
    def setUpClass(cls):
        if not (NODE and BUILT and OPENSSL_PY):
            raise unittest.SkipTest("prerequisites missing")
        cls.dir = make_temp_dir("vifibnet-compat-registry-")
        cls.mails = os.path.join(cls.dir, "mail")
        cls.procs = []
        try:
            subprocess.run([NODE, os.path.join(ROOT, "bin", "vifibnet-ca"), "--prefix", "2001:db8:42::/48", "--dir", cls.dir],
                           check=True, capture_output=True, timeout=TIMEOUT)
            db = sqlite3.connect(os.path.join(cls.dir, "registry.db"))
            db.execute("CREATE TABLE peers (prefix TEXT PRIMARY KEY NOT NULL, address TEXT NOT NULL, "
                       "date INTEGER DEFAULT (strftime('%s','now')))")
            db.execute("INSERT INTO peers (prefix, address) VALUES (?, ?)", BOOT)
            db.commit()
            db.close()
            sink = Process([NODE, os.path.join(ROOT, "dist", "test", "helpers", "smtp-sink.js"), cls.mails])
            cls.procs.append(sink)
            smtp_port = int(sink.wait_line(r"^(\d+)$").group(1))
            reg = Process([NODE, os.path.join(ROOT, "bin", "vifibnet-registry"), "0", "--db", os.path.join(cls.dir, "registry.db"),
                           "--ca", os.path.join(cls.dir, "ca.crt"), "--key", os.path.join(cls.dir, "ca.key"),
                           "--mailhost", "127.0.0.1:%d" % smtp_port])
            cls.procs.append(reg)
            cls.port = int(reg.wait_line(r"listening on 0\.0\.0\.0:(\d+)").group(1))
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for p in getattr(cls, "procs", []):
            p.stop()
        shutil.rmtree(cls.dir, True)

    def token_for(self, email, timeout=TIMEOUT):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for name in sorted(os.listdir(self.mails)) if os.path.isdir(self.mails) else []:
                path = os.path.join(self.mails, name)
                with open(path, newline="") as f:
                    text = f.read()
                if ("X-Envelope-To: %s\r\n" % email) in text:
                    os.rename(path, path + ".read")
                    return re.search(r"^Your token : ([a-z]{8})\r?$", text, re.M).group(1)
            time.sleep(0.05)
        raise AssertionError("no token mail for " + email)

    def test_interactive_then_pyopenssl_reads_everything(self):
        d = self.workdir()
        p = Process([sys.executable, SETUP, "--server", "127.0.0.1", "--port", str(self.port), "-d", d,
                     "-r", "C", "FR", "-r", "O", "Vifib", "-r", "OU", "Interop", "-r", "emailAddress", "node@example.com"])
        self.addCleanup(p.stop)
        p.proc.stdin.write("interop@example.com\n")
        p.proc.stdin.flush()
        token = self.token_for("interop@example.com")
        p.proc.stdin.write(token + "\n")
        p.proc.stdin.close()
        self.assertEqual(p.proc.wait(TIMEOUT), 0, "".join(p.err))
        time.sleep(0.1)  # let the reader threads drain
        out = "".join(p.out)
        self.assertIn("Please enter your email address : ", out)
        self.assertIn("Please enter your token : ", out)
        facts = pyopenssl_check(d)
        self.assert_files(d, facts)
        self.assertEqual(facts["subject"]["C"], "FR")
        self.assertEqual(facts["subject"]["O"], "Vifib")
        self.assertEqual(facts["subject"]["OU"], "Interop")
        self.assertEqual(facts["subject"]["emailAddress"], "node@example.com")
        with open(os.path.join(self.dir, "ca.crt")) as a, open(os.path.join(d, "ca.pem")) as b:
            self.assertEqual(a.read(), b.read())

    def run_on_terminal(self, args, script):
        """Runs setup.py on a pseudo-terminal; `script(read_until, write)` plays the user."""
        import pty
        import select
        pid, fd = pty.fork()
        if pid == 0:
            try:
                os.execv(sys.executable, [sys.executable, SETUP] + args)
            finally:
                os._exit(127)
        buf = [b""]

        def read_until(text, timeout=TIMEOUT):
            deadline = time.time() + timeout
            while text.encode() not in buf[0] and time.time() < deadline:
                if select.select([fd], [], [], 0.1)[0]:
                    try:
                        buf[0] += os.read(fd, 4096)
                    except OSError:
                        break
            self.assertIn(text, buf[0].decode(errors="replace"))

        try:
            script(read_until, lambda text: os.write(fd, text.encode()))
            deadline = time.time() + TIMEOUT
            while time.time() < deadline:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                if select.select([fd], [], [], 0.1)[0]:
                    try:
                        buf[0] += os.read(fd, 4096)
                    except OSError:
                        pass
            else:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                self.fail("setup.py did not finish: " + buf[0].decode(errors="replace"))
            return os.waitstatus_to_exitcode(status), buf[0].decode(errors="replace")
        finally:
            os.close(fd)

    def test_on_a_terminal(self):
        d = self.workdir()
        args = ["--server", "127.0.0.1", "--port", str(self.port), "-d", d]

        def user(read_until, write):
            read_until("Please enter your email address : ")
            write("tty@example.com\n")
            token = self.token_for("tty@example.com")
            read_until("Please enter your token : ")
            write(token + "\n")

        code, out = self.run_on_terminal(args, user)
        self.assertEqual(code, 0, out)
        self.assert_files(d, pyopenssl_check(d))

    def test_ctrl_c_on_a_terminal(self):
        d = self.workdir()
        with open(os.path.join(d, "notes.txt"), "w") as f:
            f.write("kept\n")
        before = snapshot(d)

        def user(read_until, write):
            read_until("Please enter your email address : ")
            write("ctrlc@example.com\n")
            self.token_for("ctrlc@example.com")
            read_until("Please enter your token : ")
            write("\x03")  # the terminal driver turns it into SIGINT

        code, out = self.run_on_terminal(["--server", "127.0.0.1", "--port", str(self.port), "-d", d], user)
        self.assertEqual(code, 130, out)
        self.assertIn("setup.py: error: interrupted (SIGINT): nothing was written to", out)
        self.assertEqual(snapshot(d), before)

    def test_unattended_ipv6(self):
        d = self.workdir()
        p = Process([sys.executable, SETUP, "--server", "::1", "--port", str(self.port), "-d", d, "--email", "v6@example.com"])
        self.addCleanup(p.stop)
        p.wait_line(r"A token was sent")
        token = self.token_for("v6@example.com")
        d2 = self.workdir()
        r = run_setup(["--server", "::1", "--port", str(self.port), "-d", d2, "--token", token])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_files(d2, pyopenssl_check(d2))

    def test_wrong_token_leaves_directory_as_it_was(self):
        d = self.workdir()
        with open(os.path.join(d, "notes.txt"), "w") as f:
            f.write("kept\n")
        before = snapshot(d)
        r = run_setup(["--server", "127.0.0.1", "--port", str(self.port), "-d", d, "--token", "zzzzzzzz"])
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, r"^setup\.py: error: requestCertificate: the registry refused the token")
        self.assertEqual(len(r.stderr.strip().splitlines()), 1)
        self.assertEqual(snapshot(d), before)

    def test_legacy_command_line(self):
        r = run_setup([])
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage: setup.py", r.stderr)
        self.assertIn("the following arguments are required: --server, --port", r.stderr)
        d = self.workdir()
        r = run_setup(["--server", "127.0.0.1", "--port", str(self.port), "--dir", d, "--db-only", "--no-boot"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(os.listdir(d)), ["ca.pem", "peers.db"])
        self.assertIn("created, without bootstrap peer (--no-boot)", r.stdout)


class AgainstLegacyModel(SetupInterop):
    """A model of the 2012 registry: Python's XML-RPC server and pyOpenSSL signing."""

    def start_model(self, family, peers=True):
        d = self.workdir()
        p = Process([OPENSSL_PY, os.path.realpath(__file__), "legacy-registry", d, family, "peers" if peers else "none"])
        self.addCleanup(p.stop)
        port = int(p.wait_line(r"^PORT (\d+)$").group(1))
        return d, port

    def test_full_setup_ipv4_and_ipv6(self):
        for family, host in (("inet", "127.0.0.1"), ("inet6", "::1")):
            with self.subTest(family=family):
                model, port = self.start_model(family)
                d = self.workdir()
                p = Process([sys.executable, SETUP, "--server", host, "--port", str(port), "-d", d, "--req", "O", "Legacy"])
                self.addCleanup(p.stop)
                p.proc.stdin.write("legacy@example.com\n")
                p.proc.stdin.flush()
                token_file = os.path.join(model, "token")
                deadline = time.time() + TIMEOUT
                while not os.path.exists(token_file) and time.time() < deadline:
                    time.sleep(0.05)
                with open(token_file) as f:
                    p.proc.stdin.write(f.read().strip() + "\n")
                p.proc.stdin.close()
                self.assertEqual(p.proc.wait(TIMEOUT), 0, "".join(p.err))
                facts = pyopenssl_check(d)
                self.assert_files(d, facts)
                self.assertEqual(facts["subject"]["O"], "Legacy")
                self.assertEqual(facts["signature_algorithm"], "sha1WithRSAEncryption")
                self.assertIn("signed cert.crt with SHA-1", "".join(p.err))

    def test_legacy_faults(self):
        model, port = self.start_model("inet", peers=False)
        d = self.workdir()
        r = run_setup(["--server", "127.0.0.1", "--port", str(port), "-d", d, "--db-only"])
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, r"getBootstrapPeer: the registry gave no bootstrap peer .*--no-boot")
        r = run_setup(["--server", "127.0.0.1", "--port", str(port), "-d", d, "--no-boot", "--token", "unknown"])
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, r"requestCertificate: the registry refused the token or the request")
        self.assertEqual(os.listdir(d), [])


# ---- helper modes, run under the interpreter that has pyOpenSSL ----

def check_files(d):
    from OpenSSL import SSL, crypto
    facts = {}
    with open(os.path.join(d, "cert.key"), "rb") as f:
        key = crypto.load_privatekey(crypto.FILETYPE_PEM, f.read())
    with open(os.path.join(d, "cert.crt"), "rb") as f:
        cert = crypto.load_certificate(crypto.FILETYPE_PEM, f.read())
    with open(os.path.join(d, "ca.pem"), "rb") as f:
        ca = crypto.load_certificate(crypto.FILETYPE_PEM, f.read())
    facts["key_type"] = "RSA" if key.type() == crypto.TYPE_RSA else str(key.type())
    facts["key_bits"] = key.bits()
    facts["key_check"] = key.check()
    facts["cert_holds_key"] = (crypto.dump_publickey(crypto.FILETYPE_PEM, cert.get_pubkey())
                               == crypto.dump_publickey(crypto.FILETYPE_PEM, key))
    facts["subject"] = {k.decode(): v.decode() for k, v in cert.get_subject().get_components()}
    facts["signature_algorithm"] = cert.get_signature_algorithm().decode()
    store = crypto.X509Store()
    store.add_cert(ca)
    try:
        crypto.X509StoreContext(store, cert).verify_certificate()
        facts["verified_by_ca"] = True
    except crypto.X509StoreContextError as e:
        facts["verified_by_ca"], facts["verify_error"] = False, str(e)
    ctx = SSL.Context(SSL.TLS_METHOD)
    if facts["signature_algorithm"].startswith("sha1"):
        # OpenSSL 3 refuses SHA-1 ("ca md too weak", SPEC section 7) unless told otherwise,
        # as OpenVPN needs --tls-cert-profile insecure for the legacy registry's certificates.
        ctx.set_cipher_list(b"DEFAULT:@SECLEVEL=0")
    ctx.use_certificate(cert)
    ctx.use_privatekey(key)
    ctx.check_privatekey()
    facts["tls_context_ok"] = True
    try:
        ctx.load_tmp_dh(os.path.join(d, "dh2048.pem"))
        r = subprocess.run(["openssl", "dhparam", "-in", os.path.join(d, "dh2048.pem"), "-check", "-noout"],
                           capture_output=True, text=True) if shutil.which("openssl") else None
        facts["dh_ok"] = r is None or r.returncode == 0
        if r is not None and r.returncode != 0:
            facts["dh_error"] = r.stderr
    except SSL.Error as e:
        facts["dh_ok"], facts["dh_error"] = False, str(e)
    print(json.dumps(facts))


def legacy_registry(d, family, peers):
    """Serves getCa, getBootstrapPeer, requestToken, requestCertificate as the 2012 registry."""
    import random
    import socket
    import string
    from xmlrpc.server import SimpleXMLRPCServer
    from OpenSSL import crypto

    ca_key = crypto.PKey()
    ca_key.generate_key(crypto.TYPE_RSA, 2048)
    ca = crypto.X509()
    ca.set_serial_number(0x120010db80042)  # 2001:db8:42::/48
    ca.get_subject().CN = "legacy model CA"
    ca.set_issuer(ca.get_subject())
    ca.set_pubkey(ca_key)
    ca.gmtime_adj_notBefore(0)
    ca.gmtime_adj_notAfter(86400)
    ca.sign(ca_key, "sha256")
    ca_pem = crypto.dump_certificate(crypto.FILETYPE_PEM, ca).decode()
    tokens = {}
    counter = [0]

    class Registry:
        def getCa(self):
            return ca_pem

        def getBootstrapPeer(self):
            if peers != "peers":
                raise StopIteration()  # the legacy's `.next()` on an empty cursor
            return BOOT

        def requestToken(self, email):
            token = "".join(random.sample(string.ascii_lowercase, 8))
            tokens[token] = email
            with open(os.path.join(d, "token.tmp"), "w") as f:
                f.write(token)
            os.rename(os.path.join(d, "token.tmp"), os.path.join(d, "token"))

        def requestCertificate(self, token, req):
            del tokens[token]  # KeyError: a fault, as the legacy's failed lookup
            req = crypto.load_certificate_request(crypto.FILETYPE_PEM, req)
            cert = crypto.X509()
            counter[0] += 1
            cert.set_serial_number(counter[0])
            cert.gmtime_adj_notBefore(0)
            cert.gmtime_adj_notAfter(365 * 86400)
            cert.set_issuer(ca.get_subject())
            subject = req.get_subject()
            subject.CN = "%u/16" % counter[0]
            cert.set_subject(subject)
            cert.set_pubkey(req.get_pubkey())
            cert.sign(ca_key, "sha1")
            return crypto.dump_certificate(crypto.FILETYPE_PEM, cert).decode()

    class Server(SimpleXMLRPCServer):
        address_family = socket.AF_INET6 if family == "inet6" else socket.AF_INET

    server = Server(("::1" if family == "inet6" else "127.0.0.1", 0), logRequests=False, allow_none=True)
    server.register_instance(Registry())
    print("PORT %d" % server.server_address[1], flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "check":
        check_files(sys.argv[2])
    elif len(sys.argv) == 5 and sys.argv[1] == "legacy-registry":
        legacy_registry(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        unittest.main()
