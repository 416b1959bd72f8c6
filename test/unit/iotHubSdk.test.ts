import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import azureIotDevice from 'azure-iot-device';
import azureIotDeviceMqtt from 'azure-iot-device-mqtt';

const { ModuleClient, DeviceMethodResponse } = azureIotDevice;
const { Mqtt } = azureIotDeviceMqtt;

/** A module connection string for a hub nobody dials: building the client connects to nothing. */
const CONNECTION = 'HostName=test-hub.azure-devices.net;DeviceId=d;ModuleId=m;SharedAccessKey=' + Buffer.from('k'.repeat(32)).toString('base64');

describe('what the module relies on in the Azure IoT SDK', () => {
  it('dispatches direct methods as method_<name> events on a transport EventEmitter (the 404 for unknown methods wraps its emit)', () => {
    const client = ModuleClient.fromConnectionString(CONNECTION, Mqtt);
    const transport = (client as unknown as { _transport?: unknown })._transport;
    assert.ok(transport instanceof EventEmitter, 'ModuleClient keeps its transport in _transport, an EventEmitter');
    const handler = () => undefined;
    client.onMethod('probe', handler);
    assert.equal((transport as EventEmitter).listenerCount('method_probe'), 1, 'onMethod listens for method_<name> on the transport');
    assert.equal(typeof DeviceMethodResponse, 'function', 'DeviceMethodResponse(requestId, transport) answers a request');
    void client.close().catch(() => undefined);
  });
});
