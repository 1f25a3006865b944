#!/usr/bin/env python3
"""Interoperability of the lifecycle (issue 11) with Python and a legacy file.

A network migrated from the 2012 registry: its database made by Python's
sqlite3 with the legacy schema, its certificates issued the legacy way
(SHA-1, serial 0). Against bin/vifibnet-registry, with xmlrpc.client and
pyOpenSSL only: a legacy certificate renewed to SHA-256, a node enrolled with
a token minted by `vifibnet-registry token` (no mail), a node revoked while
the registry runs, the signed revocation list verified with pyOpenSSL, the
inventory read as JSON; then the file opens in Python's sqlite3 with the
three legacy tables exactly as they were, and the legacy allocation goes on.

Run from the repository root, after `npx tsc -p .`:
    python3 -m unittest -v compat.test_lifecycle
(test/compat.test.ts does, under `npm test`).
"""

import base64
import json
import sqlite3
import subprocess
import time
import unittest

from OpenSSL import crypto

from compat import test_registry as legacy

setUpModule = legacy.setUpModule
LEGACY_TABLES = ("peers", "peers_ping", "tokens", "vpn")


def command(*args):
    """`vifibnet-registry COMMAND ...`; returns its standard output."""
    r = subprocess.run(legacy.REGISTRY_BIN + list(args), cwd=legacy.ROOT, capture_output=True, text=True,
                       timeout=legacy.TIMEOUT)
    if r.returncode != 0:
        raise AssertionError("vifibnet-registry %s: exit %s: %s" % (" ".join(args), r.returncode, r.stderr))
    return r.stdout


def legacy_schema(db):
    return [row for row in legacy.schema_of(db) if row[1] in LEGACY_TABLES]


class MigratedNetworkLifecycle(legacy.RegistryTestCase):
    """A legacy network's registry file, renewed, revoked and enrolled into by the new registry."""

    @classmethod
    def create_ca(cls, directory):
        return legacy.make_legacy_ca(directory, [("C", "FR"), ("O", "Vifib"), ("CN", "vifibnet CA")])

    @classmethod
    def prepare_db(cls):
        db = legacy.create_legacy_db(cls.db)
        try:
            cls.keys = [legacy.rsa_key(n=10), legacy.rsa_key(n=11)]
            cls.prefixes = [legacy.legacy_issue(db, cls.ca_path, cls.key_path, legacy.make_req(key, "legacy%d@example.com" % i), "legacy%d@example.com" % i)
                            for i, key in enumerate(cls.keys)]
            cls.legacy_certs = [row[0] for row in db.execute("SELECT cert FROM vpn WHERE cert IS NOT NULL ORDER BY prefix")]
        finally:
            db.close()
        cls.schema_before = legacy_schema(cls.db)

    def csr_for(self, key):
        return legacy.make_csr(key)

    def test_lifecycle(self):
        p0, p1 = self.prefixes
        self.assertEqual((p0, p1), ("0000000000000000", "0000000000000001"))
        ca = legacy.load_cert(self.ca_pem)

        # renewCertificate: the legacy SHA-1 certificate with serial 0 comes back as SHA-256, same subject and key
        old = legacy.load_cert(self.legacy_certs[0])
        self.assertEqual(old.get_signature_algorithm(), b"sha1WithRSAEncryption")
        self.assertEqual(old.get_serial_number(), 0)
        new = legacy.load_cert(self.rpc.renewCertificate(self.legacy_certs[0], self.csr_for(self.keys[0])))
        self.assertEqual(new.get_signature_algorithm(), b"sha256WithRSAEncryption")
        self.assertEqual(new.get_subject().get_components(), old.get_subject().get_components())
        self.assertEqual(legacy.public_key_pem(new.get_pubkey()), legacy.public_key_pem(old.get_pubkey()))
        self.assertNotEqual(new.get_serial_number(), 0)
        store = crypto.X509Store()
        store.add_cert(ca)
        crypto.X509StoreContext(store, new).verify_certificate()
        self.assertEqual(legacy.query(self.db, "SELECT cert FROM vpn WHERE prefix = ?", (p0,)),
                         [(crypto.dump_certificate(crypto.FILETYPE_PEM, new).decode(),)])
        self.assertFault(self.rpc.renewCertificate, self.legacy_certs[1], self.csr_for(self.keys[0]))

        # a minted token, no mail: the legacy client's requestCertificate takes it
        token = command("token", "--db", self.db, "--email", "minted@example.com").strip()
        csr = legacy.make_csr(legacy.rsa_key(n=12))
        self.assertCertificate(self.rpc.requestCertificate(token, csr), csr, "2/16")

        # revoke the second legacy node while the registry runs
        me, them = str(self.node_address(p0)), str(self.node_address(p1))
        self.assertIs(self.rpc.declare((me, "192.0.2.20,1194,udp")), True)
        self.assertIs(self.rpc.declare((them, "192.0.2.21,1194,udp")), True)
        self.assertIn("revoked 1/16", command("revoke", "--db", self.db, "--reason", "decommissioned", "1/16"))
        deadline = time.monotonic() + legacy.TIMEOUT
        while [p1, "192.0.2.21,1194,udp"] in self.proxy().getPeerList(999, me):
            self.assertLess(time.monotonic(), deadline, "the revoked node is still listed")
            time.sleep(0.1)
        time.sleep(1.5)  # every worker has looked at the revoked table again by now (once a second)
        self.assertIs(self.proxy().declare((them, "192.0.2.21,1194,udp")), False)
        self.assertFault(self.proxy().getPeerList, 10, them)
        self.assertFault(self.proxy().renewCertificate, self.legacy_certs[1], self.csr_for(self.keys[1]))

        # the signed revocation list, checked with pyOpenSSL against the CA certificate
        answer = self.rpc.getRevocationList()
        self.assertEqual(sorted(answer), ["list", "signature"])
        crypto.verify(ca, base64.b64decode(answer["signature"]), answer["list"].encode("utf-8"), "sha256")
        revoked = json.loads(answer["list"])
        self.assertEqual(revoked["version"], 1)
        self.assertEqual([(r["prefix"], r["cn"], r["reason"]) for r in revoked["revoked"]], [(p1, "1/16", "decommissioned")])
        with self.assertRaises(crypto.Error):
            crypto.verify(ca, base64.b64decode(answer["signature"]), answer["list"].replace("1/16", "0/16").encode(), "sha256")

        # the inventory
        inventory = {e["cn"]: e for e in json.loads(command("list", "--db", self.db, "--json"))}
        self.assertEqual(sorted(inventory), ["0/16", "1/16", "2/16"])
        self.assertEqual((inventory["0/16"]["sha1"], inventory["0/16"]["address"]), (False, "192.0.2.20,1194,udp"))
        self.assertEqual((inventory["1/16"]["sha1"], inventory["1/16"]["revoked"]["reason"]), (True, "decommissioned"))
        self.assertEqual(inventory["2/16"]["email"], "minted@example.com")

        # the file, the registry stopped: the three legacy tables as they were, the legacy allocation goes on
        self.registry.stop()
        self.assertEqual(legacy_schema(self.db), self.schema_before)
        self.assertIn("revoked", [row[1] for row in legacy.schema_of(self.db)])
        self.assertEqual(legacy.query(self.db, "PRAGMA integrity_check"), [("ok",)])
        self.assertEqual(legacy.query(self.db, "PRAGMA journal_mode"), [("delete",)])
        db = sqlite3.connect(self.db, isolation_level=None)
        try:
            self.assertEqual(legacy.legacy_get_prefix(db, 16), "0000000000000011")
        finally:
            db.close()


if __name__ == "__main__":
    unittest.main()
