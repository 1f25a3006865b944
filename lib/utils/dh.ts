// Diffie-Hellman parameters for the node's OpenVPN server (its --dh file).
//
// The legacy setup ran `openssl dhparam 2048`, 5 to 60 s of prime search.
// A fixed, well-known group is as safe for DHE (RFC 7919 section 1) and costs
// nothing: this is the RFC 7919 "ffdhe2048" group (generator 2), PEM-encoded
// as PKCS#3 DHParameter, byte for byte what
// `openssl genpkey -genparam -algorithm DH -pkeyopt group:ffdhe2048` prints.
// test/setup-units.test.ts rebuilds the prime from the RFC's formula.

export const FFDHE2048_PEM = `-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
`;
