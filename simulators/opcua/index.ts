// An OPC UA server (node-opcua) with a small plant model, for tests, benchmarks and the demo:
// changing analog values, counters, booleans, strings, an array, a 64-bit counter and a writable
// setpoint under Objects/Plant/Line1. It offers every security policy the driver supports, with
// its own certificates in a PKI folder of its own, and counts the sessions clients create.
import type { Variant } from 'node-opcua';
import pino, { type Logger } from 'pino';
import { loadOpcua } from '../../drivers/opcua/load.js';
import { freePort } from '../free-port.js';

export interface OpcuaSimOptions {
  port?: number;
  /** Folder for the server's own PKI (certificate created on first start). */
  pkiDir: string;
  /** Accepted user name → password; anonymous is always allowed. */
  users?: Record<string, string>;
  /** Where node-opcua's own warnings go (default: nowhere). */
  log?: Logger;
}

export interface OpcuaSimulator {
  port: number;
  endpoint: string;
  /** CreateSession requests answered since start. */
  readonly sessionsCreated: number;
  /** The server's certificate (DER), e.g. to trust it in a client PKI. */
  certificate(): Buffer;
  /** Trusts a CA (PEM) that issues user certificates, as a site would configure its server. */
  trustUserCa(pem: string): Promise<void>;
  /** Sets the value of Line1.Setpoint, as an operator would. */
  setSetpoint(v: number): void;
  stop(): Promise<void>;
}

export const PLANT_NODES = {
  temperature: { nodeId: 'ns=1;s=Line1.Temperature', dataType: 'Double' },
  pressure: { nodeId: 'ns=1;s=Line1.Pressure', dataType: 'Float' },
  counter: { nodeId: 'ns=1;s=Line1.Counter', dataType: 'UInt32' },
  energy: { nodeId: 'ns=1;s=Line1.EnergyWh', dataType: 'Int64' },
  level: { nodeId: 'ns=1;s=Line1.Level', dataType: 'Int16' },
  running: { nodeId: 'ns=1;s=Line1.Running', dataType: 'Boolean' },
  recipe: { nodeId: 'ns=1;s=Line1.Recipe', dataType: 'String' },
  profile: { nodeId: 'ns=1;s=Line1.Profile', dataType: 'Double[]' },
  setpoint: { nodeId: 'ns=1;s=Line1.Setpoint', dataType: 'Double' },
  drift: { nodeId: 'ns=1;s=Line1.Drift', dataType: 'Double' },
  tank: { nodeId: 'ns=1;s=Line1.TankLevel', dataType: 'Double' },
} as const;

export async function startOpcuaSim(opts: OpcuaSimOptions): Promise<OpcuaSimulator> {
  const { OPCUACertificateManager, OPCUAServer, DataType, MessageSecurityMode, SecurityPolicy, Variant, VariantArrayType, StatusCodes } = await loadOpcua(
    opts.log ?? pino({ level: 'silent' }),
  );
  const port = opts.port ?? (await freePort());
  const serverCertificateManager = new OPCUACertificateManager({
    rootFolder: opts.pkiDir,
    automaticallyAcceptUnknownCertificate: true,
    disableFileWatchers: true,
  });
  await serverCertificateManager.initialize();
  // X509 user identities: any well-formed user certificate is accepted (this is a simulator).
  const userCertificateManager = new OPCUACertificateManager({
    rootFolder: `${opts.pkiDir}-users`,
    automaticallyAcceptUnknownCertificate: true,
    disableFileWatchers: true,
  });
  await userCertificateManager.initialize();
  const users = opts.users ?? {};
  const server = new OPCUAServer({
    port,
    hostname: '127.0.0.1',
    resourcePath: '/edgeferry-sim',
    buildInfo: { productName: 'edgeferry OPC UA simulator', manufacturerName: 'edgeferry' },
    serverCertificateManager,
    userCertificateManager,
    securityPolicies: [SecurityPolicy.None, SecurityPolicy.Basic256Sha256, SecurityPolicy.Aes128_Sha256_RsaOaep, SecurityPolicy.Aes256_Sha256_RsaPss],
    securityModes: [MessageSecurityMode.None, MessageSecurityMode.Sign, MessageSecurityMode.SignAndEncrypt],
    allowAnonymous: true,
    userManager: { isValidUser: (user: string, password: string) => users[user] !== undefined && users[user] === password },
    serverCapabilities: { operationLimits: { maxNodesPerRead: 4 } },
  });
  await server.initialize();
  const ns = server.engine.addressSpace!.getOwnNamespace();
  const plant = ns.addObject({ organizedBy: server.engine.addressSpace!.rootFolder.objects, browseName: 'Plant' });
  const line = ns.addObject({ componentOf: plant, browseName: 'Line1' });
  const t0 = Date.now();
  const t = () => (Date.now() - t0) / 1000;
  let setpoint = 42.5;
  const v = (dataType: number, value: unknown, arrayType?: number) => new Variant({ dataType, value, arrayType });
  const add = (name: string, dataType: string, get: () => Variant, extra: Record<string, unknown> = {}) =>
    ns.addVariable({ componentOf: line, browseName: name, nodeId: `s=Line1.${name}`, dataType, minimumSamplingInterval: 100, value: { get }, ...extra });
  add('Temperature', 'Double', () => v(DataType.Double, 60 + 20 * Math.sin(t() / 5)));
  add('Pressure', 'Float', () => v(DataType.Float, 4 + Math.cos(t() / 3)));
  add('Counter', 'UInt32', () => v(DataType.UInt32, Math.floor(t() * 10)));
  add('EnergyWh', 'Int64', () => v(DataType.Int64, [2, Math.floor(t() * 100)], VariantArrayType.Scalar)); // 2^33 + n: beyond 32 bits
  add('Level', 'Int16', () => v(DataType.Int16, Math.round(100 * Math.sin(t()))));
  add('Running', 'Boolean', () => v(DataType.Boolean, Math.floor(t() / 5) % 2 === 0));
  // Creeps up by 0.1 every 100 ms: a deadband of 1.0 must let only every ~11th change through.
  add('Drift', 'Double', () => v(DataType.Double, Math.floor(t() * 10) / 10));
  // An AnalogItem with an EURange of 0–100 %, so percent deadbands apply; creeps like Drift.
  ns.addAnalogDataItem({
    componentOf: line,
    browseName: 'TankLevel',
    nodeId: 's=Line1.TankLevel',
    dataType: 'Double',
    engineeringUnitsRange: { low: 0, high: 100 },
    minimumSamplingInterval: 100,
    value: { get: () => v(DataType.Double, (Math.floor(t() * 10) / 10) % 100) },
  });
  add('Recipe', 'String', () => v(DataType.String, 'PET-500ml'));
  add('Profile', 'Double', () => v(DataType.Double, [1.5, 2.5, 3.5], VariantArrayType.Array), { valueRank: 1, arrayDimensions: [3] });
  add('Setpoint', 'Double', () => v(DataType.Double, setpoint), {
    accessLevel: 'CurrentRead | CurrentWrite',
    userAccessLevel: 'CurrentRead | CurrentWrite',
    value: {
      get: () => v(DataType.Double, setpoint),
      set: (variant: Variant) => {
        setpoint = Number(variant.value);
        return StatusCodes.Good;
      },
    },
  });
  let sessions = 0;
  server.on('create_session', () => sessions++);
  await server.start();
  return {
    port,
    endpoint: `opc.tcp://127.0.0.1:${port}/edgeferry-sim`,
    get sessionsCreated() {
      return sessions;
    },
    certificate: () => Buffer.concat(([] as Buffer[]).concat(server.getCertificateChain() as unknown as Buffer[])),
    setSetpoint: (x) => (setpoint = x),
    trustUserCa: async (pem) => {
      const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
      await userCertificateManager.addIssuer(der, false, true);
    },
    stop: async () => {
      await server.shutdown(0);
      await serverCertificateManager.dispose();
      await userCertificateManager.dispose();
    },
  };
}
