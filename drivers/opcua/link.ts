// An OPC UA link: one node-opcua client and session per endpoint. The link runner owns its
// liveness: node-opcua's own reconnect loop is switched off (connectionStrategy.maxRetry 0), so a
// restarted server never sees two competing loops flooding it with CreateSession requests; a lost
// connection is reported and the runner reopens on its backoff schedule.
import { createHash, X509Certificate } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { ClientSession, EndpointDescription, OPCUAClient, UserIdentityInfo } from 'node-opcua';
import type { Logger } from 'pino';
import { raceSignal, withDeadline } from '../../src/core/deadline.js';
import type { Link } from '../../src/core/link.js';
import { NotConnectedError, TimeoutError } from '../../src/errors.js';
import { loadOpcua } from './load.js';
import type { OpcuaConnectionConfig } from './schema.js';

/** MessageSecurityMode values (Part 4). */
const MODES = { None: 1, Sign: 2, SignAndEncrypt: 3 } as const;
/** SecurityPolicy URIs (Part 7). */
const POLICY_URI = 'http://opcfoundation.org/UA/SecurityPolicy#';
/** UserTokenType values (Part 4). */
const TOKEN = { Anonymous: 0, UserName: 1, Certificate: 2 } as const;
/** AttributeIds.Value */
const VALUE = 13;

/** ServerCapabilities.OperationLimits.MaxNodesPerRead (Part 5). */
const MAX_NODES_PER_READ = 'i=11705';

export class OpcuaLink implements Link {
  readonly endpoint: string;
  readonly kind = 'network' as const;
  private client: OPCUAClient | undefined;
  private sessionRef: ClientSession | undefined;
  /** Aborted (with a NotConnectedError) when the session or connection is lost or closed. */
  private lost: AbortController | undefined;
  /** Read requests are split to this many nodes (from the server's operation limits). */
  maxNodesPerRead = 1000;
  private readonly pki: string;

  constructor(
    private readonly cfg: OpcuaConnectionConfig,
    private readonly baseDir: string,
    private readonly log: Logger,
    /** How the user accepts a first server certificate where this link is used (the YAML key, or a CLI flag). */
    private readonly trustHint = 'set trust_unknown_server: true to accept a first certificate',
    /** The gateway's site and id, for the subject of the client certificate it makes for itself. */
    private readonly gateway?: { site: string; id: string },
  ) {
    this.endpoint = cfg.endpoint;
    this.pki = cfg.pki_dir !== undefined ? resolve(baseDir, cfg.pki_dir) : defaultPkiDir(baseDir);
  }

  /** Where the PKI goes without pki_dir (also what `check` reports on). */
  get pkiDir(): string {
    return this.pki;
  }

  private identity(): UserIdentityInfo {
    const file = (f: string | undefined, what: string) => {
      if (!f) throw new NotConnectedError(`${this.endpoint}: auth ${this.cfg.auth} needs ${what}`);
      return readFileSync(resolve(this.baseDir, f), 'utf8');
    };
    switch (this.cfg.auth) {
      case 'username':
        return { type: TOKEN.UserName, userName: this.cfg.username ?? '', password: file(this.cfg.password_file, 'password_file').replace(/\r?\n$/, '') };
      case 'certificate': {
        const pem = file(this.cfg.user_certificate, 'user_certificate');
        const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
        return { type: TOKEN.Certificate, certificateData: der, privateKey: file(this.cfg.user_key, 'user_key') };
      }
      default:
        return { type: TOKEN.Anonymous };
    }
  }

  async open(signal: AbortSignal, onLost: (reason: string) => void): Promise<void> {
    await this.close();
    if (signal.aborted) throw new NotConnectedError(`${this.endpoint}: aborted`);
    const { OPCUACertificateManager, OPCUAClient } = await loadOpcua(this.log);
    // Made here, with every missing parent, so that a folder this process cannot write is one clear
    // error (an installed box: /etc is read-only for the hardened service) rather than the library's.
    try {
      mkdirSync(this.pki, { recursive: true, mode: 0o700 });
      accessSync(this.pki, constants.W_OK);
    } catch (err) {
      throw new NotConnectedError(
        `${this.endpoint}: the OPC UA PKI folder ${this.pki} cannot be written by this process (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); set pki_dir to a folder it can write, such as /var/lib/edgeferry/pki/opcua`,
      );
    }
    const certificateManager = new OPCUACertificateManager({
      rootFolder: this.pki,
      automaticallyAcceptUnknownCertificate: this.cfg.trust_unknown_server,
      disableFileWatchers: true,
    });
    await certificateManager.initialize();
    const applicationUri = `urn:${hostname()}:edgeferry`;
    // The gateway's own certificate, made once: its subject names this gateway (an operator
    // trusting it on a server sees which box it is), not the library's defaults. One made
    // earlier is kept: servers already trust it.
    const own = this.ownCertificate();
    if (!existsSync(own)) {
      await certificateManager.createSelfSignedCertificate({
        applicationUri,
        dns: [hostname()],
        outputFile: own,
        subject: this.subject(),
        startDate: new Date(),
        validity: 3650,
      });
    }
    const client = OPCUAClient.create({
      applicationName: 'edgeferry',
      applicationUri,
      clientCertificateManager: certificateManager,
      securityMode: MODES[this.cfg.security_mode],
      securityPolicy: POLICY_URI + this.cfg.security_policy,
      endpointMustExist: false,
      keepSessionAlive: false,
      requestedSessionTimeout: 60_000,
      defaultTransactionTimeout: this.cfg.timeout_ms,
      connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 100 },
      // node-opcua allocates a whole send chunk for every request: at the size a server offers
      // (512 KiB from node-opcua's own) that was 45 MB/s of buffers for seven devices polled every
      // second, and the garbage collector's major collections every two seconds to free them
      // (bench/FINDINGS.md 23). 64 KiB holds any read of a plan's nodes; longer messages are split.
      transportSettings: { sendBufferSize: 65_536 },
    });
    this.client = client;
    let reported = false;
    const report = (reason: string) => {
      if (reported) return;
      reported = true;
      lost.abort(new NotConnectedError(`${this.endpoint}: ${reason}`));
      onLost(reason);
    };
    const lost = new AbortController();
    this.lost = lost;
    try {
      await withDeadline(
        client.connect(this.endpoint),
        this.cfg.timeout_ms,
        () => new TimeoutError(`${this.endpoint}: connect: no answer after ${this.cfg.timeout_ms} ms`),
      );
      client.on('connection_lost', () => report('connection lost'));
      client.on('close', () => report('connection closed'));
      const session = await withDeadline(
        client.createSession(this.identity()),
        this.cfg.timeout_ms,
        () => new TimeoutError(`${this.endpoint}: CreateSession: no answer after ${this.cfg.timeout_ms} ms`),
      );
      session.on('session_closed', () => report('session closed'));
      this.sessionRef = session;
      const limit = await session.read({ nodeId: MAX_NODES_PER_READ, attributeId: VALUE }).catch(() => undefined);
      const n = Number(limit?.value?.value ?? 0);
      this.maxNodesPerRead = this.cfg.max_nodes_per_read || (n > 0 ? n : 1000);
    } catch (err) {
      await this.close();
      if (err instanceof TimeoutError || err instanceof NotConnectedError) throw err;
      const message = (err as Error).message;
      if (/certificate/i.test(message)) throw new NotConnectedError(await this.untrustedMessage(), { cause: err });
      if (/find an? endpoint/i.test(message)) throw new NotConnectedError(await this.noEndpointMessage(), { cause: err });
      if (this.cfg.security_mode !== 'None' && /disconnected by third party|rejected by server/i.test(message)) {
        throw new NotConnectedError(this.refusedMessage(), { cause: err });
      }
      throw new NotConnectedError(`${this.endpoint}: ${message}`, { cause: err });
    }
  }

  /**
   * The clear error for an untrusted server certificate: which one (its thumbprint, asked of the
   * server again over an unsecured discovery connection), and the file to move where.
   */
  private async untrustedMessage(): Promise<string> {
    const thumb = await this.serverThumbprint().catch(() => undefined);
    const dir = join(this.pki, 'rejected');
    let file: string | undefined;
    try {
      file = readdirSync(dir).find((f) => thumb && f.toLowerCase().includes(`[${thumb}]`));
    } catch {
      /* no rejected folder yet */
    }
    const trusted = `${join(this.pki, 'trusted', 'certs')}/`;
    const what = file ? `move ${join(dir, file)} to ${trusted}` : `put its certificate in ${trusted}`;
    return `${this.endpoint}: the server certificate (SHA-1 thumbprint ${thumb ?? 'unknown: the server did not answer GetEndpoints'}) is not trusted; if it is the right server, ${what} (or ${this.trustHint})`;
  }

  /** The server's endpoints, asked over an unsecured discovery connection. */
  private async endpoints(): Promise<EndpointDescription[]> {
    const { OPCUAClient } = await loadOpcua(this.log);
    const discovery = OPCUAClient.create({ endpointMustExist: false, connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 100 } });
    try {
      await withDeadline(discovery.connect(this.endpoint), this.cfg.timeout_ms, () => new TimeoutError('connect'));
      return await withDeadline(discovery.getEndpoints(), this.cfg.timeout_ms, () => new TimeoutError('GetEndpoints'));
    } finally {
      await withDeadline(discovery.disconnect(), 2000, () => new Error('disconnect timeout')).catch(() => undefined);
    }
  }

  /** The SHA-1 thumbprint of the certificate the server offers for our policy and mode. */
  private async serverThumbprint(): Promise<string | undefined> {
    const endpoints = await this.endpoints();
    const ours = endpoints.find(
      (e) => Number(e.securityMode) === MODES[this.cfg.security_mode] && e.securityPolicyUri === POLICY_URI + this.cfg.security_policy,
    );
    const chain = (ours ?? endpoints.find((e) => e.serverCertificate?.length))?.serverCertificate;
    return chain ? createHash('sha1').update(firstDer(chain)).digest('hex') : undefined;
  }

  /** The server has no endpoint for our policy and mode: say which ones it has. */
  private async noEndpointMessage(): Promise<string> {
    const names = Object.fromEntries(Object.entries(MODES).map(([k, v]) => [v, k]));
    const offered = await this.endpoints()
      .then((eps) =>
        [...new Set(eps.map((e) => `${e.securityPolicyUri?.replace(POLICY_URI, '')}/${names[Number(e.securityMode)] ?? e.securityMode}`))].join(', '),
      )
      .catch(() => 'unknown (GetEndpoints failed)');
    return `${this.endpoint}: the server offers no ${this.cfg.security_policy}/${this.cfg.security_mode} endpoint; it offers ${offered} — set security_policy and security_mode (browse: --security-policy, --security-mode) to one of them`;
  }

  /**
   * The server ended the secure channel handshake: almost always because it does not trust the
   * gateway's own certificate (open62541 and most servers answer BadCertificateUntrusted, which
   * node-opcua reports only as a closed socket). Says which certificate to give the server.
   */
  private ownCertificate(): string {
    return join(this.pki, 'own', 'certs', 'client_certificate.pem');
  }

  /** CN "edgeferry GATEWAY@HOST", O the site (browse, which runs without a gateway file: "edgeferry browse@HOST"). */
  private subject(): string {
    const host = hostname().replace(/[/=]/g, '-');
    const who = this.gateway ? `edgeferry ${this.gateway.id}@${host}` : `edgeferry browse@${host}`;
    return `/CN=${who.slice(0, 64)}${this.gateway ? `/O=${this.gateway.site}` : ''}/OU=edgeferry`;
  }

  private refusedMessage(): string {
    const own = this.ownCertificate();
    let thumb = '';
    try {
      if (existsSync(own)) thumb = ` (SHA-1 thumbprint ${new X509Certificate(readFileSync(own)).fingerprint.replace(/:/g, '').toLowerCase()})`;
    } catch {
      /* unreadable: say the path only */
    }
    return `${this.endpoint}: the server closed the connection while opening a ${this.cfg.security_policy}/${this.cfg.security_mode} secure channel — most likely it does not trust the gateway's certificate: add ${own}${thumb} to the server's trusted certificates (DER: openssl x509 -in FILE -outform der), then the gateway connects on its next attempt`;
  }

  /** The open session; throws NotConnectedError when there is none. */
  session(): { session: ClientSession; untilLost: <T>(p: Promise<T>) => Promise<T> } {
    const lost = this.lost;
    if (!this.sessionRef || !lost) throw new NotConnectedError(`${this.endpoint}: no session`);
    return { session: this.sessionRef, untilLost: (p) => raceSignal(p, lost.signal) };
  }

  async close(): Promise<void> {
    const client = this.client;
    const session = this.sessionRef;
    this.client = undefined;
    this.sessionRef = undefined;
    this.lost?.abort(new NotConnectedError(`${this.endpoint}: closed`));
    this.lost = undefined;
    client?.removeAllListeners('connection_lost');
    client?.removeAllListeners('close');
    if (session) await withDeadline(session.close(), 2000, () => new Error('close timeout')).catch(() => undefined);
    if (client) await withDeadline(client.disconnect(), 2000, () => new Error('disconnect timeout')).catch(() => undefined);
  }
}

/** The first certificate of a DER chain (servers may send their certificate followed by its issuers). */
function firstDer(chain: Buffer): Buffer {
  if (chain[0] !== 0x30) return chain;
  const b = chain[1]!;
  if (b < 0x80) return chain.subarray(0, 2 + b);
  const n = b & 0x7f;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + chain[2 + i]!;
  return chain.subarray(0, 2 + n + len);
}

/**
 * Without pki_dir: the service's state folder when systemd gives one (STATE_DIRECTORY, from the unit's
 * StateDirectory=: /var/lib/edgeferry, the one place the hardened unit may write), else next to the
 * gateway file (a checkout, the demo).
 */
export function defaultPkiDir(baseDir: string, env: NodeJS.ProcessEnv = process.env): string {
  const state = env.STATE_DIRECTORY?.split(':')[0];
  return join(state || baseDir, 'pki', 'opcua');
}
