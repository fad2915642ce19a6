// The three-way handshake against a running tcpstated, over gRPC.
//
//   npm install && node handshake.js [HOST:PORT]
//
// HOST:PORT is the gRPC address (default: $TCPSTATED_GRPC or
// 127.0.0.1:50051). The API is loaded from the .proto files in api/proto
// (or $TCPSTATED_PROTO_DIR). The script creates a session with fixed ISNs,
// opens a listener on 10.0.0.1:80, submits a peer's SYN and then its ACK
// of tcpstated's SYN-ACK, and prints the states the endpoints go through.
"use strict";

const path = require("path");
const fs = require("fs");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const address = process.argv[2] || process.env.TCPSTATED_GRPC || "127.0.0.1:50051";
const protoDir = process.env.TCPSTATED_PROTO_DIR || path.join(__dirname, "..", "..", "api", "proto");
const apiDir = path.join(protoDir, "tcpstate", "v1");
const files = fs.readdirSync(apiDir).filter((f) => f.endsWith(".proto")).map((f) => path.join("tcpstate", "v1", f));

const def = protoLoader.loadSync(files, {
  includeDirs: [protoDir],
  keepCase: false, // fields as lowerCamelCase, as in proto3 JSON
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const v1 = grpc.loadPackageDefinition(def).tcpstate.v1;
const creds = grpc.credentials.createInsecure();
const sessions = new v1.SessionService(address, creds);
const endpoints = new v1.EndpointService(address, creds);
const segments = new v1.SegmentService(address, creds);

// call turns a unary gRPC method into a promise.
const call = (client, method, req) =>
  new Promise((resolve, reject) =>
    client[method](req, { deadline: Date.now() + 10000 }, (err, resp) => (err ? reject(err) : resolve(resp))));

const state = async (name) => (await call(endpoints, "getEndpoint", { name })).endpoint.stateName;

async function main() {
  const { session } = await call(sessions, "createSession", {
    session: { options: { isnMode: "ISN_MODE_FIXED", fixedIsn: 1000 } },
  });
  console.log(`session ${session.name} (ISN 1000)`);

  const { endpoint: listener } = await call(endpoints, "createEndpoint", {
    parent: session.name,
    endpointId: "web",
    listen: { localAddress: "10.0.0.1:80" },
  });
  console.log(`listener ${listener.name}: ${listener.stateName}`);

  const peer = { sourceAddress: "10.0.0.2:40000", destinationAddress: "10.0.0.1:80", window: 65535 };
  const syn = await call(segments, "submitSegment", { parent: session.name, fields: { ...peer, seq: 100, flags: ["SYN"] } });
  const synAck = syn.outputs.segments[0];
  const conn = syn.outputs.transitions[0].endpoint;
  console.log(`> SYN seq=100`);
  console.log(`< ${synAck.flags.join(",")} seq=${synAck.seq} ack=${synAck.ack}`);
  for (const t of syn.outputs.transitions) console.log(`${t.endpoint}: ${t.fromStateName} -> ${t.toStateName} (${t.cause})`);
  console.log(`connection ${conn}: ${await state(conn)}`);

  const ack = await call(segments, "submitSegment", {
    parent: session.name,
    fields: { ...peer, seq: 101, ack: synAck.seq + 1, flags: ["ACK"] },
  });
  console.log(`> ACK seq=101 ack=${synAck.seq + 1}`);
  for (const t of ack.outputs.transitions) console.log(`${t.endpoint}: ${t.fromStateName} -> ${t.toStateName} (${t.cause})`);
  console.log(`connection ${conn}: ${await state(conn)}`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`handshake failed: ${err.message}`);
    process.exit(1);
  });
