// Throwaway certificates for the demo and tests: a CA made at start, and server/client
// certificates it signs. Nothing here is ever committed; keys live only in memory or a temp dir.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

export interface KeyPair {
  key: string;
  cert: string;
}

function keyPair(): { privateKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey; pem: string } {
  // Node's native generator is ~100× faster than forge's pure-JS one.
  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const priv = forge.pki.privateKeyFromPem(privateKey);
  const pub = forge.pki.setRsaPublicKey(priv.n, priv.e);
  return { privateKey: priv, publicKey: pub, pem: privateKey };
}

function baseCert(publicKey: forge.pki.PublicKey, cn: string, days: number): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = '01' + randomBytes(8).toString('hex');
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + days * 86_400_000);
  cert.setSubject([{ name: 'commonName', value: cn }]);
  return cert;
}

export interface Ca extends KeyPair {
  issue(cn: string, usage: 'server' | 'client'): KeyPair;
}

export function createCa(name = 'edgeferry throwaway CA', days = 2): Ca {
  const kp = keyPair();
  const cert = baseCert(kp.publicKey, name, days);
  cert.setIssuer(cert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(kp.privateKey, forge.md.sha256.create());
  const caPem = forge.pki.certificateToPem(cert);
  return {
    key: kp.pem,
    cert: caPem,
    issue(cn, usage) {
      const leaf = keyPair();
      const c = baseCert(leaf.publicKey, cn, days);
      c.setIssuer(cert.subject.attributes);
      c.setExtensions([
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
        { name: 'extKeyUsage', serverAuth: usage === 'server', clientAuth: usage === 'client' },
        ...(usage === 'server'
          ? [
              {
                name: 'subjectAltName',
                altNames: [
                  { type: 2, value: 'localhost' },
                  { type: 7, ip: '127.0.0.1' },
                ],
              },
            ]
          : []),
        { name: 'authorityKeyIdentifier', keyIdentifier: cert.generateSubjectKeyIdentifier().getBytes() },
      ]);
      c.sign(kp.privateKey, forge.md.sha256.create());
      return { key: leaf.pem, cert: forge.pki.certificateToPem(c) };
    },
  };
}
