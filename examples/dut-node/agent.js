// agent.js: a DUT agent in Node.js, the starter for a student's stack.
//
//   npm ci && node agent.js [HOST:PORT]
//   tcpstated script run --target=dut:127.0.0.1:7000 testdata/scripts/handshake-passive.pkt
//
// It serves tcpstate.dut.v1.DeviceUnderTestService (loaded from dut.proto
// at run time: no generated code) on HOST:PORT (default 127.0.0.1:7000; port
// 0 picks a free one) and prints "dut-node: serving ... on HOST:PORT" once
// it listens. The gRPC plumbing is done here: Reset, the Packets stream,
// and the order of packets and calls. Each socket call goes to stack.js,
// where it answers UNIMPLEMENTED until the student wires it. The proto is
// found at ../../api/proto, or under $TCPSTATED_PROTO_DIR.
"use strict";

const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const { Stack } = require("./stack");

const address = process.argv[2] || process.env.DUT_ADDRESS || "127.0.0.1:7000";
const protoDir = process.env.TCPSTATED_PROTO_DIR || path.join(__dirname, "..", "..", "api", "proto");

const def = protoLoader.loadSync(path.join("tcpstate", "dut", "v1", "dut.proto"), {
  includeDirs: [protoDir],
  keepCase: false, // fields in lowerCamelCase: localAddress, tcpInfo
  longs: Number, // int64 as a JavaScript number
  enums: String,
  defaults: true,
  oneofs: true,
});
const dutv1 = grpc.loadPackageDefinition(def).tcpstate.dut.v1;

// Each call carries how many packets tcpstated had sent on the Packets
// stream before it (the stream and the call travel separately): the call
// runs once the stack has taken that many.
const PACKETS_SENT = "tcpstate-packets-sent";

let stream = null; // the Packets stream in use
let received = 0; // packets taken from it
let waiters = []; // calls waiting for packets

const stack = new Stack((packet) => {
  if (stream) stream.write({ packet });
});

function wake() {
  const ready = waiters.filter((w) => received >= w.n);
  waiters = waiters.filter((w) => received < w.n);
  for (const w of ready) w.resolve();
}

// awaitPackets resolves when the stack has taken the packets sent before
// the call (or after a second, when they are lost with an old stream).
function awaitPackets(call) {
  const n = Number(call.metadata.get(PACKETS_SENT)[0] || 0);
  if (received >= n) return Promise.resolve();
  return new Promise((resolve) => {
    const w = { n, resolve };
    waiters.push(w);
    setTimeout(() => {
      waiters = waiters.filter((x) => x !== w);
      resolve();
    }, 1000);
  });
}

// handler answers an RPC with the stack's method: its result { ret,
// errno, detail, skip } or a whole response ({ result, value, tcpInfo },
// { result, fds }). A thrown error with a gRPC code (UNIMPLEMENTED) is
// the RPC's error; any other is UNKNOWN with its message.
function handler(method) {
  return async (call, callback) => {
    try {
      await awaitPackets(call);
      const out = await stack[method](call.request);
      callback(null, out && out.result !== undefined ? out : { result: out || { ret: 0 } });
    } catch (err) {
      const code = typeof err.code === "number" ? err.code : grpc.status.UNKNOWN;
      callback({ code, details: err.message || String(err) });
    }
  };
}

const service = {
  Reset: async (call, callback) => {
    try {
      await stack.reset(call.request);
      callback(null, { stack: stack.name() });
    } catch (err) {
      callback({ code: grpc.status.UNKNOWN, details: "reset: " + (err.message || String(err)) });
    }
  },
  Packets: (call) => {
    if (stream) stream.end(); // one stream at a time: the newest wins
    stream = call;
    received = 0;
    call.on("data", (req) => {
      if (stream !== call) return;
      received++;
      try {
        stack.input(req.packet);
      } catch (err) {
        console.error("dut-node: input:", err);
      }
      wake();
    });
    const done = () => {
      if (stream === call) stream = null;
    };
    call.on("end", () => {
      done();
      call.end();
    });
    call.on("error", done);
    call.on("cancelled", done);
  },
};
for (const [rpc, method] of Object.entries({
  Socket: "socket", Bind: "bind", Listen: "listen", Accept: "accept", Connect: "connect",
  Read: "read", Write: "write", Shutdown: "shutdown", Close: "close", Fcntl: "fcntl",
  SetSockOpt: "setSockOpt", GetSockOpt: "getSockOpt", Poll: "poll",
})) {
  service[rpc] = handler(method);
}

const server = new grpc.Server();
server.addService(dutv1.DeviceUnderTestService.service, service);
server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    console.error(`dut-node: ${address}: ${err.message}`);
    process.exit(2);
  }
  const host = address.slice(0, address.lastIndexOf(":"));
  console.log(`dut-node: serving ${stack.name()} on ${host}:${port}`);
});

for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => server.tryShutdown(() => process.exit(0)));
}
