import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { test } from "node:test";
// The npm xmlrpc package is the independent reference implementation here.
import Deserializer from "xmlrpc/lib/deserializer";
import * as reference from "xmlrpc/lib/serializer";
import {
  XmlRpcParseError, XmlRpcValue, parseMethodCall, parseMethodResponse, serializeFault, serializeMethodCall, serializeResponse,
} from "../lib/xmlrpc";

const fixture = (name: string): string => readFileSync(join(__dirname, "..", "..", "fixtures", "xmlrpc", name), "utf8");

function referenceParseResponse(xml: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    new Deserializer().deserializeMethodResponse(Readable.from([xml]), (err: unknown, value: unknown) => (err ? reject(err) : resolve(value)));
  });
}

test("parses the calls Python's xmlrpc.client writes", () => {
  assert.deepEqual(parseMethodCall(fixture("call-getPeerList.xml")), { method: "getPeerList", params: [50, "2001:db8:42:5::"] });
  assert.deepEqual(parseMethodCall(fixture("call-declare.xml")), {
    method: "declare",
    params: [["2001:db8:42:5::", "198.51.100.7,1194,udp;198.51.100.7,443,tcp-client"]],
  });
  assert.deepEqual(parseMethodCall(fixture("call-requestToken.xml")).params, ["a&b<c>@example.com"]);
  assert.deepEqual(parseMethodCall(fixture("call-getCa.xml")), { method: "getCa", params: [] });
  const csr = parseMethodCall(fixture("call-requestCertificate.xml")).params[1] as string;
  assert.equal(csr, "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n", "CRLF normalized as expat does");
});

test("writes responses byte for byte as Python's xmlrpc.client.dumps", () => {
  assert.equal(serializeResponse([["0000000000000101", "198.51.100.7,1194,udp"]]), fixture("response-peerlist.xml"));
  assert.equal(serializeResponse(null), fixture("response-nil.xml"));
  assert.equal(serializeFault({ faultCode: 1, faultString: "<class 'LookupError'>:unknown token" }), fixture("response-fault.xml"));
  assert.equal(serializeMethodCall("getPeerList", [50, "2001:db8:42:5::"]), fixture("call-getPeerList.xml"));
  assert.equal(serializeMethodCall("declare", [["2001:db8:42:5::", "198.51.100.7,1194,udp;198.51.100.7,443,tcp-client"]]), fixture("call-declare.xml"));
});

test("round trips through the reference implementation", async () => {
  const values: XmlRpcValue[] = [
    "plain", "<&>\"'", "", 0, -2147483648, 2147483647, 1.5, true, false, [], [1, ["a", [true]]],
    { faultCode: 1, nested: { a: [1, 2] } }, "é ünïcödé ✓",
  ];
  for (const v of values) {
    assert.deepEqual(await referenceParseResponse(serializeResponse(v)), v, JSON.stringify(v));
    const call = parseMethodCall(reference.serializeMethodCall("m", [v]));
    assert.deepEqual(call, { method: "m", params: [v] });
  }
  assert.deepEqual(parseMethodCall(serializeMethodCall("x.y", ["a", 2, null])), { method: "x.y", params: ["a", 2, null] });
  assert.deepEqual(parseMethodResponse(fixture("response-fault.xml")), { fault: { faultCode: 1, faultString: "<class 'LookupError'>:unknown token" } });
  assert.deepEqual(parseMethodResponse(fixture("response-nil.xml")), { result: null });
});

test("accepts the other legal spellings", () => {
  const wrap = (value: string) => `<?xml version="1.0" encoding="utf-8"?><!-- c --><methodCall><methodName>m</methodName><params><param>${value}</param></params></methodCall>`;
  assert.deepEqual(parseMethodCall(wrap("<value>untyped</value>")).params, ["untyped"]);
  assert.deepEqual(parseMethodCall(wrap("<value><i4> 7 </i4></value>")).params, [7]);
  assert.deepEqual(parseMethodCall(wrap("<value><string><![CDATA[<x>]]></string></value>")).params, ["<x>"]);
  assert.deepEqual(parseMethodCall(wrap("<value><string>&#65;&#x42;&quot;&apos;</string></value>")).params, ["AB\"'"]);
  assert.deepEqual(parseMethodCall(wrap("<value><nil/></value>")).params, [null]);
  assert.deepEqual(parseMethodCall(wrap("<value><base64>aGk=</base64></value>")).params, [Buffer.from("hi")]);
  assert.deepEqual(parseMethodCall(wrap('<value><array a="1"><data/></array></value>')).params, [[]]);
  assert.deepEqual(parseMethodCall("<methodCall><methodName>m</methodName></methodCall>").params, []);
});

test("rejects what is not well-formed XML-RPC, with a reason", () => {
  const bad: Array<[string, RegExp]> = [
    ["", /empty/],
    ["not xml", /outside the root/],
    ["<methodCall><methodName>m</methodName>", /never closed/],
    ["<methodCall><methodName>m</methodName></params></methodCall>", /closes|unexpected/],
    ['<!DOCTYPE x [<!ENTITY a "b">]><methodCall/>', /document type/],
    ["<methodCall><methodName>m&x;</methodName></methodCall>", /bare '&'/],
    ["<methodCall><methodName>m</methodName><params><param><value><int>1x</int></value></param></params></methodCall>", /bad integer/],
    ["<methodCall><methodName>m</methodName><params><param><value><int>99999999999999999999</int></value></param></params></methodCall>", /bad integer/],
    ["<methodCall><methodName>m</methodName><params><param><value><boolean>2</boolean></value></param></params></methodCall>", /bad boolean/],
    ["<methodCall><methodName>m</methodName><params><param><value><foo/></value></param></params></methodCall>", /unknown value type/],
    ["<methodResponse/>", /expected <methodCall>/],
    ["<methodCall><methodName>m</methodName></methodCall><x/>", /more than one root/],
    ["<methodCall><methodName>a b</methodName></methodCall>", /bad method name/],
    ["<methodCall><methodName>m</methodName><params>" + "<param><value><array><data>".repeat(40) + "</data></array></value></param>".repeat(40) + "</params></methodCall>", /too deeply/],
  ];
  for (const [doc, why] of bad) assert.throws(() => parseMethodCall(doc), (e: unknown) => e instanceof XmlRpcParseError && why.test(e.message), doc.slice(0, 60));
});
