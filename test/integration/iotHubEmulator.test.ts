import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
// azure-iot-device(-mqtt) are CommonJS whose exports Node's ESM loader cannot list: import the default.
import azureIotDevice from 'azure-iot-device';
import azureIotDeviceMqtt from 'azure-iot-device-mqtt';
import type { ModuleClient as ModuleClientType, Twin } from 'azure-iot-device';
import { IotHubEmulator, type TwinProperties } from '../support/iotHubEmulator.js';
import { generateTestCerts, type TestCerts } from '../support/testCerts.js';
import { applyEnvironment, WorkloadApiEmulator } from '../support/workloadApi.js';

const { ModuleClient, Message } = azureIotDevice;
const { Mqtt } = azureIotDeviceMqtt;

const TEST_TIMEOUT_MS = 20_000;
const WAIT_MS = 15_000;
const DEVICE = 'edge-device-1';
const DESIRED_FILTER = '$iothub/twin/PATCH/properties/desired/#';
const METHODS_FILTER = '$iothub/methods/POST/#';

/** Resolves when the SDK's merged desired document satisfies `predicate` (checked now and on every update). */
function waitForTwinDesired(twin: Twin, predicate: (desired: TwinProperties) => boolean, timeoutMs = WAIT_MS): Promise<TwinProperties> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const desired = twin.properties.desired as TwinProperties;
      if (predicate(desired)) {
        clearTimeout(timer);
        twin.removeListener('properties.desired', check);
        resolve(desired);
      }
    };
    const timer = setTimeout(() => {
      twin.removeListener('properties.desired', check);
      reject(new Error(`desired never matched; last: ${JSON.stringify(twin.properties.desired)}`));
    }, timeoutMs);
    twin.on('properties.desired', check);
  });
}

/** `twin.properties.reported.update` is callback-only (it returns undefined, not a promise). */
function updateReported(twin: Twin, patch: TwinProperties): Promise<void> {
  return new Promise((resolve, reject) => {
    twin.properties.reported.update(patch, (err?: Error) => (err ? reject(err) : resolve()));
  });
}

async function openWithConnectionString(hub: IotHubEmulator, moduleId: string, ca: string): Promise<ModuleClientType> {
  const client = ModuleClient.fromConnectionString(hub.connectionString(DEVICE, moduleId), Mqtt);
  await client.setOptions({ ca });
  await client.open();
  return client;
}

async function closeQuietly(client: ModuleClientType | undefined): Promise<void> {
  if (!client) return;
  // Not removeAllListeners(): the SDK keeps its own listeners on the client and breaks without them.
  await client.close().catch(() => {});
}

describe('IotHubEmulator with a real azure-iot-device ModuleClient over MQTT/TLS', () => {
  let certs: TestCerts;
  let hub: IotHubEmulator;

  before(async () => {
    certs = await generateTestCerts();
    hub = await IotHubEmulator.create({ certs });
  });

  after(async () => {
    await hub?.close();
    await certs?.cleanup();
  });

  describe('a module connecting with a connection string and the test CA', () => {
    const moduleId = 'conn-string';
    const clientId = IotHubEmulator.clientId(DEVICE, moduleId);
    let client: ModuleClientType | undefined;
    let twin: Twin;

    before(async () => {
      hub.addModule(DEVICE, moduleId);
      hub.setDesired(DEVICE, moduleId, { pipelines: { cam1: { source: 'rtsp://a', fps: 25 } }, logLevel: 'info' });
      client = await openWithConnectionString(hub, moduleId, certs.caCert);
    });

    after(() => closeQuietly(client));

    it('is tracked as connected under its <device>/<module> client id', { timeout: TEST_TIMEOUT_MS }, async () => {
      await hub.waitForConnection(clientId, WAIT_MS);
      assert.equal(hub.isConnected(clientId), true);
    });

    it('gets the desired document from getTwin()', { timeout: TEST_TIMEOUT_MS }, async () => {
      twin = await client!.getTwin();
      assert.deepEqual(twin.properties.desired, hub.getTwin(DEVICE, moduleId).desired);
      assert.equal((twin.properties.desired as TwinProperties).logLevel, 'info');
    });

    it('delivers a desired patch to properties.desired and the SDK holds the merged document', { timeout: TEST_TIMEOUT_MS }, async () => {
      // The SDK subscribes to desired updates once a listener is added.
      twin.on('properties.desired', () => {});
      await hub.waitForSubscription(clientId, DESIRED_FILTER, WAIT_MS);
      const version = hub.patchDesired(DEVICE, moduleId, { pipelines: { cam1: { fps: 30 }, cam2: { source: 'rtsp://b' } }, logLevel: null });
      // The patch's own $version: the document the SDK held before it cannot match.
      const desired = await waitForTwinDesired(twin, (d) => d.$version === version);
      assert.deepEqual(desired, {
        pipelines: { cam1: { source: 'rtsp://a', fps: 30 }, cam2: { source: 'rtsp://b' } },
        $version: version,
      });
    });

    it('applies a reported patch that waitForReported observes, null deleting a key', { timeout: TEST_TIMEOUT_MS }, async () => {
      const after = hub.reportedVersion(DEVICE, moduleId);
      await updateReported(twin, { state: 'starting', pipelines: { cam1: 'playing' } });
      await updateReported(twin, { state: 'running', pipelines: null });
      const reported = await hub.waitForReported(DEVICE, moduleId, (r) => r.state === 'running', { after, timeoutMs: WAIT_MS });
      assert.equal(reported.$version, after + 2, 'one $version per reported patch');
      assert.equal(reported.pipelines, undefined);
    });

    it('round-trips a direct method answered with status 200 and a payload', { timeout: TEST_TIMEOUT_MS }, async () => {
      client!.onMethod('echo', (request, response) => {
        if (!request || !response) return;
        void response.send(200, { echoed: request.payload, method: request.methodName });
      });
      await hub.waitForSubscription(clientId, METHODS_FILTER, WAIT_MS);
      const result = await hub.invokeMethod(DEVICE, moduleId, 'echo', { n: 42 }, WAIT_MS);
      assert.deepEqual(result, { status: 200, payload: { echoed: { n: 42 }, method: 'echo' } });
    });

    it('records an output event with its output name, properties and body', { timeout: TEST_TIMEOUT_MS }, async () => {
      const message = new Message(JSON.stringify({ kind: 'motion', score: 0.9 }));
      message.contentType = 'application/json';
      message.properties.add('camera', 'cam 1');
      await client!.sendOutputEvent('events', message);
      const event = await hub.waitForEvent((e) => e.outputName === 'events' && e.moduleId === moduleId, WAIT_MS);
      assert.equal(event.deviceId, DEVICE);
      assert.equal(event.properties['$.on'], 'events');
      assert.equal(event.properties['$.ct'], 'application/json');
      assert.equal(event.properties.camera, 'cam 1');
      assert.deepEqual(JSON.parse(event.body.toString('utf8')), { kind: 'motion', score: 0.9 });
    });

    it('delivers an input message to the module with its properties', { timeout: TEST_TIMEOUT_MS }, async () => {
      const received = new Promise<{ inputName: string; body: string; prop: unknown }>((resolve) => {
        client!.on('inputMessage', (inputName, msg) => {
          resolve({ inputName, body: msg.getData().toString(), prop: msg.properties.getValue('source') });
          void client!.complete(msg).catch(() => {});
        });
      });
      await hub.waitForSubscription(clientId, `devices/${DEVICE}/modules/${moduleId}/inputs/#`, WAIT_MS);
      await hub.sendInputMessage(DEVICE, moduleId, 'control', '{"cmd":"reload"}', { source: 'test suite' });
      assert.deepEqual(await received, { inputName: 'control', body: '{"cmd":"reload"}', prop: 'test suite' });
    });
  });

  describe('a module using ModuleClient.fromEnvironment with the IoT Edge workload API', () => {
    const moduleId = 'edge-env';
    let workload: WorkloadApiEmulator;
    let client: ModuleClientType | undefined;

    before(async () => {
      const key = hub.addModule(DEVICE, moduleId);
      hub.setDesired(DEVICE, moduleId, { configuredBy: 'deployment' });
      workload = await WorkloadApiEmulator.create(hub.caCert);
      workload.addModule(moduleId, key, 'gen-7');
    });

    after(async () => {
      await closeQuietly(client);
      await workload?.close();
    });

    it('connects through the IOTEDGE_* variables and gets its twin', { timeout: TEST_TIMEOUT_MS }, async () => {
      const restore = applyEnvironment(workload.edgeEnvironment({
        deviceId: DEVICE,
        moduleId,
        iothubHostName: hub.hubHostName,
        gatewayHostName: hub.gatewayHostName,
      }));
      try {
        // The SDK reads the environment (and fetches the trust bundle) here, not in open().
        client = await ModuleClient.fromEnvironment(Mqtt);
      } finally {
        restore();
      }
      await client.open();
      const twin = await client.getTwin();
      assert.equal((twin.properties.desired as TwinProperties).configuredBy, 'deployment');
      assert.equal(hub.isConnected(IotHubEmulator.clientId(DEVICE, moduleId)), true);
      const paths = workload.requests.map((r) => `${r.method} ${r.path.split('?')[0]} ${r.status}`);
      assert.ok(paths.includes('GET /trust-bundle 200'), paths.join(', '));
      assert.ok(paths.includes(`POST /modules/${moduleId}/genid/gen-7/sign 200`), paths.join(', '));
    });
  });

  describe('a module presenting bad credentials', () => {
    const moduleId = 'bad-creds';
    const clientId = IotHubEmulator.clientId(DEVICE, moduleId);

    before(() => {
      hub.addModule(DEVICE, moduleId);
    });

    /** Opens a client with `connectionString`: open() must fail, and the hub must say why in a way `reason` accepts. */
    async function expectRefused(connectionString: string, reason: (text: string) => boolean): Promise<void> {
      const reasons: string[] = [];
      const onAuthFailed = (id: string, text: string): void => { if (id === clientId) reasons.push(text); };
      hub.on('authFailed', onAuthFailed);
      const client = ModuleClient.fromConnectionString(connectionString, Mqtt);
      try {
        await client.setOptions({ ca: certs.caCert });
        await assert.rejects(client.open());
        assert.equal(hub.isConnected(clientId), false);
        assert.ok(reasons.some(reason), reasons.join('; '));
      } finally {
        hub.off('authFailed', onAuthFailed);
        await closeQuietly(client);
      }
    }

    it('is refused when its token is signed with the wrong key, and open() fails', { timeout: TEST_TIMEOUT_MS }, async () => {
      const wrongKey = randomBytes(32).toString('base64');
      const connectionString = hub.connectionString(DEVICE, moduleId)
        .replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${wrongKey}`);
      await expectRefused(connectionString, (r) => r.includes('signature'));
    });

    it('is refused when its token names another hub (wrong sr)', { timeout: TEST_TIMEOUT_MS }, async () => {
      const connectionString = hub.connectionString(DEVICE, moduleId)
        .replace(`HostName=${hub.hubHostName}`, 'HostName=other-hub.azure-devices.net');
      await expectRefused(connectionString, (r) => r.startsWith('sr '));
    });
  });

  describe('a module across a hub outage', () => {
    const moduleId = 'outage';
    const clientId = IotHubEmulator.clientId(DEVICE, moduleId);
    let client: ModuleClientType | undefined;

    before(async () => {
      hub.addModule(DEVICE, moduleId);
      hub.setDesired(DEVICE, moduleId, { pipeline: 'v1', keep: true });
    });

    after(async () => {
      await hub.start();
      await closeQuietly(client);
    });

    it('reconnects by itself after stop()/start() on the same port and sees desired changes made while offline once it fetches the twin again', { timeout: TEST_TIMEOUT_MS }, async () => {
      client = await openWithConnectionString(hub, moduleId, certs.caCert);
      const twin = await client.getTwin();
      // The SDK only re-establishes a dropped connection for features in use: desired updates here.
      twin.on('properties.desired', () => {});
      await hub.waitForSubscription(clientId, DESIRED_FILTER, WAIT_MS);
      const port = hub.port;

      await hub.stop();
      assert.equal(hub.isConnected(clientId), false);
      hub.patchDesired(DEVICE, moduleId, { pipeline: 'v2', keep: null });

      await hub.start();
      assert.equal(hub.port, port);
      await hub.waitForConnection(clientId, WAIT_MS);

      const refreshed = await client.getTwin();
      assert.deepEqual(refreshed.properties.desired, { pipeline: 'v2', $version: hub.getTwin(DEVICE, moduleId).desired.$version });
    });
  });
});
