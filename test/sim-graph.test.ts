// The simulator's graph measures on graphs whose answers are known: a ring,
// a complete graph, a star, a square (a tie), two components; exact and
// sampled searches, one batch and several.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { BATCH, buildCsr, componentSizes, meanDistance, searchAll, type Csr } from "../sim/graph";

/** A graph from an edge list, in that (age) order, with its per-edge route counts after a search from every node. */
function graph(n: number, edges: Array<[number, number]>): { csr: Csr; halfEdge: Int32Array } {
  const a = Int32Array.from(edges, (e) => e[0]);
  const b = Int32Array.from(edges, (e) => e[1]);
  return buildCsr(n, a, b, edges.length);
}
const all = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const ring = (n: number): Array<[number, number]> => all(n).map((i) => [i, (i + 1) % n]);
const complete = (n: number): Array<[number, number]> => all(n).flatMap((i) => all(n).filter((j) => j > i).map((j): [number, number] => [i, j]));
const star = (n: number): Array<[number, number]> => all(n - 1).map((i) => [i + 1, 0]);

/** Routes of edge i at its first endpoint, from a search over every node. */
function routesOf(n: number, edges: Array<[number, number]>): { routes: number[]; mean: number; max: number; error: number } {
  const { csr, halfEdge } = graph(n, edges);
  const routes = new Uint32Array(csr.targets.length);
  const t = searchAll(csr, all(n), routes);
  const { mean, error } = meanDistance(t, n, n);
  return { routes: Array.from(halfEdge, (j) => routes[j]!), mean, max: t.maxDistance, error };
}

describe("simulator graph", () => {
  test("a ring of 9: mean distance 2.5, max 4, each tunnel carries the 4 nodes on its side", () => {
    const r = routesOf(9, ring(9));
    assert.equal(r.mean, 2.5); // distances 1..4, twice each
    assert.equal(r.max, 4);
    assert.equal(r.error, 0);
    assert.deepEqual(r.routes, Array(9).fill(4));
  });

  test("a ring of 301 (two batches of sources): mean distance 75.5, max 150", () => {
    assert.ok(301 > BATCH);
    const r = routesOf(301, ring(301));
    assert.equal(r.mean, 75.5);
    assert.equal(r.max, 150);
    assert.deepEqual(new Set(r.routes), new Set([150]));
  });

  test("a complete graph: every pair at distance 1, every tunnel carries only its peer", () => {
    const r = routesOf(7, complete(7));
    assert.equal(r.mean, 1);
    assert.equal(r.max, 1);
    assert.deepEqual(r.routes, Array(21).fill(1));
  });

  test("a star: a leaf's one tunnel carries every other node, distances 1 and 2", () => {
    const n = 6;
    const r = routesOf(n, star(n));
    // 2(n-1) ordered pairs with the centre at 1 hop, (n-1)(n-2) leaf pairs at 2.
    assert.equal(r.mean, (2 * (n - 1) + 2 * (n - 1) * (n - 2)) / (n * (n - 1)));
    assert.equal(r.max, 2);
    assert.deepEqual(r.routes, Array(n - 1).fill(n - 1)); // edges are [leaf, centre]: counted at the leaf
  });

  test("a tie goes to the oldest tunnel: in a square, node 0 reaches node 2 through node 1", () => {
    // 0-1 is the oldest edge, 3-0 the newest: both 1 and 3 are 2 hops from 0 to 2.
    const edges: Array<[number, number]> = [[0, 1], [1, 2], [2, 3], [0, 3]];
    const r = routesOf(4, edges);
    assert.equal(r.routes[0], 2, "0's tunnel to 1 carries 1 and 2");
    assert.equal(r.routes[3], 1, "0's tunnel to 3 carries only 3");
    const swapped = routesOf(4, [[0, 3], [1, 2], [2, 3], [0, 1]]);
    assert.equal(swapped.routes[0], 2, "now 0's tunnel to 3 is the oldest: it carries 3 and 2");
    assert.equal(swapped.routes[3], 1);
  });

  test("components: two rings and a lone node", () => {
    const edges = [...ring(5), ...ring(3).map(([x, y]): [number, number] => [x + 5, y + 5])];
    const { csr } = graph(9, edges);
    const c = componentSizes(csr);
    assert.equal(c.largest, 5);
    assert.equal(c.nodes, 9);
    assert.equal(c.connectedPairs, 5 * 4 + 3 * 2);
    const members = new Uint8Array(9).fill(1);
    members[0] = 0;
    assert.equal(componentSizes(csr, members).largest, 4, "only members count");
    // Distances over connected pairs only: the 3-ring adds pairs at 1, the lone node none.
    const routes = new Uint32Array(csr.targets.length);
    const t = searchAll(csr, all(9), routes);
    assert.equal(t.pairs, 5 * 4 + 3 * 2);
    assert.equal(t.distance, 5 * (1 + 1 + 2 + 2) + 3 * 2);
  });

  test("a sample of sources: the mean comes with an error, and lies near the exact one", () => {
    const n = 2000;
    // A ring with chords: varied distances.
    const edges = [...ring(n), ...all(n).filter((i) => i % 7 === 0).map((i): [number, number] => [i, (i * 31 + 17) % n])];
    const { csr } = graph(n, edges.filter(([x, y]) => x !== y));
    const exact = meanDistance(searchAll(csr, all(n), new Uint32Array(csr.targets.length)), n, n);
    const sample = all(n).filter((i) => (i * 7919) % 13 === 0).slice(0, 128);
    const est = meanDistance(searchAll(csr, sample, new Uint32Array(csr.targets.length)), sample.length, n);
    assert.equal(exact.error, 0);
    assert.ok(est.error > 0);
    assert.ok(Math.abs(est.mean - exact.mean) < 4 * est.error, `${est.mean} ± ${est.error} vs ${exact.mean}`);
  });
});
