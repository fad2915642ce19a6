"use strict";

const grpc = require("@grpc/grpc-js");

// unimplemented(call) is the error a call answers until it is wired: the
// script fails at its line with UNIMPLEMENTED and this message.
function unimplemented(call) {
  const err = new Error(`${call} is not wired to the student's stack yet (examples/dut-node/stack.js: ${call})`);
  err.code = grpc.status.UNIMPLEMENTED;
  return err;
}

module.exports = { unimplemented };
