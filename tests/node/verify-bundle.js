// Verifies a sigstore bundle (v0.3, key-based, no transparency log entry) against a PEM
// public key with @sigstore/verify, an implementation independent of the registry's.
//   NODE_PATH=.cache/node/node_modules node tests/node/verify-bundle.js BUNDLE.json KEY.pem
// Prints the DSSE payload (the signed in-toto statement) and exits 0 when the signature
// verifies; prints the verifier's error and exits 1 otherwise.
'use strict';
const fs = require('fs');
const crypto = require('crypto');
const { bundleFromJSON } = require('@sigstore/bundle');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');

const [bundlePath, keyPath] = process.argv.slice(2);
try {
  const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(bundlePath, 'utf8')));
  const der = crypto.createPublicKey(fs.readFileSync(keyPath)).export({ type: 'spki', format: 'der' });
  // The key is found by the bundle's hint: base64(SHA-256(DER public key)), as cosign writes it.
  const hint = crypto.createHash('sha256').update(der).digest('base64');
  const root = { certificateAuthorities: [], timestampAuthorities: [], tlogs: [], ctlogs: [] };
  const trust = toTrustMaterial(root, { [hint]: { rawBytes: der } });
  const verifier = new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, tsaThreshold: 0 });
  verifier.verify(toSignedEntity(bundle));
  process.stdout.write(bundle.content.dsseEnvelope.payload.toString('utf8'));
} catch (err) {
  process.stderr.write(`${err.code || err.name}: ${err.message}\n`);
  process.exit(1);
}
